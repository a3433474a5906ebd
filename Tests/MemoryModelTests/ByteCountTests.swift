import MemoryModel
import XCTest

final class ByteCountTests: XCTestCase {
    func testParsesUnits() throws {
        XCTAssertEqual(try ByteCount.parse("24GiB"), 24 << 30)
        XCTAssertEqual(try ByteCount.parse("1.5 KiB"), 1536)
        XCTAssertEqual(try ByteCount.parse("512MB"), 512_000_000)
        XCTAssertEqual(try ByteCount.parse("3GB"), 3_000_000_000)
        XCTAssertEqual(try ByteCount.parse("100KB"), 100_000)
        XCTAssertEqual(try ByteCount.parse("7B"), 7)
        XCTAssertEqual(try ByteCount.parse("4096"), 4096)
        XCTAssertEqual(try ByteCount.parse("2mib"), 2 << 20)
    }

    func testRejectsNonsense() {
        for text in ["", "GiB", "-1GiB", "12 parsecs", "1e3", "1..2MB", "nan"] {
            XCTAssertThrowsError(try ByteCount.parse(text), text) { error in
                XCTAssertTrue("\(error)".contains("KiB"), "the message lists the units")
            }
        }
    }

    func testFormats() {
        XCTAssertEqual(ByteCount.format(96), "96 B")
        XCTAssertEqual(ByteCount.format(1536), "1.50 KiB")
        XCTAssertEqual(ByteCount.format(200 << 20), "200 MiB")
        XCTAssertEqual(ByteCount.format(24 << 30), "24.0 GiB")
        XCTAssertEqual(ByteCount.format(-2048), "-2.00 KiB")
        XCTAssertEqual(ByteCount.formatFixed(0.005, digits: 2), "0.01")
        XCTAssertEqual(ByteCount.formatFixed(12.0, digits: 0), "12")
    }

    func testJemallocSizeClasses() {
        // Seen with nallocx on this machine: 24 -> 32, 100 -> 112, 20000 -> 20480, 1 MiB + 1 -> 1.25 MiB.
        XCTAssertEqual(AllocatorRounding.jemallocSizeClass(24), 32)
        XCTAssertEqual(AllocatorRounding.jemallocSizeClass(100), 112)
        XCTAssertEqual(AllocatorRounding.jemallocSizeClass(20000), 20480)
        XCTAssertEqual(AllocatorRounding.jemallocSizeClass((1 << 20) + 1), 1_310_720)
        XCTAssertEqual(AllocatorRounding.jemallocSizeClass(64 << 20), 64 << 20)
        XCTAssertEqual(AllocatorRounding.jemallocUsableSize(160, alignment: 64), 192, "160 is a class but not 64-aligned")
    }
}
