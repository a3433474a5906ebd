import CKernels
import Foundation

/// The x86-64 instruction-set levels the engine's C kernels are built for (the GEMMs and the
/// elementwise kernels), and the one this process runs at: the processor's best, or a lower one named
/// by the environment variable `SNNMEM_ISA` (`avx512`, `avx2`, `baseline`), which stands for a
/// processor without the levels above it. One ceiling for both kinds of kernel, read in C
/// (`snn_kernels_best_level`), so a test process, a benchmark and `snnmem run` see the same.
public enum InstructionSet: Int, Comparable, CaseIterable, Sendable {
    case baseline = 0
    case avx2 = 1
    case avx512 = 2

    public static func < (a: InstructionSet, b: InstructionSet) -> Bool { a.rawValue < b.rawValue }

    /// The name SNNMEM_ISA takes and `snnmem run` prints.
    public var name: String { String(cString: snn_kernels_level_name(snn_kernels_level(UInt32(rawValue)))) }

    /// The processor's and OS's best level, whatever SNNMEM_ISA says.
    public static var processor: InstructionSet { InstructionSet(rawValue: Int(snn_kernels_processor_level().rawValue))! }

    /// The best level this process runs at (SNNMEM_ISA applied).
    public static var ceiling: InstructionSet { InstructionSet(rawValue: Int(snn_kernels_best_level().rawValue))! }

    /// The level SNNMEM_ISA names, nil when it is unset; throws when it names no level or one this
    /// processor lacks (the kernels then ignore it, so a command must refuse to run rather than
    /// measure something other than what was asked).
    public static func requested() throws -> InstructionSet? {
        let code = snn_kernels_requested_level()
        if code == -1 { return nil }
        guard code >= 0, let level = InstructionSet(rawValue: Int(code)) else {
            throw InstructionSetError.unknownName(environmentValue)
        }
        guard level <= processor else { throw InstructionSetError.unsupported(level, processor: processor) }
        return level
    }

    static var environmentValue: String {
        guard let raw = getenv("SNNMEM_ISA") else { return "" }
        return String(cString: raw)
    }
}

/// SNNMEM_ISA asks for something this process cannot run.
public enum InstructionSetError: Error, CustomStringConvertible, Equatable {
    case unknownName(String)
    case unsupported(InstructionSet, processor: InstructionSet)

    public var description: String {
        let names = InstructionSet.allCases.reversed().map(\.name).joined(separator: ", ")
        switch self {
        case .unknownName(let value):
            return "environment variable SNNMEM_ISA=\(value) names no instruction set snnmem has kernels for: "
                + "set it to one of \(names), or unset it to use the processor's best"
        case .unsupported(let level, let processor):
            return "environment variable SNNMEM_ISA=\(level.name) asks for an instruction set this processor (or OS) lacks: "
                + "its best is \(processor.name); set SNNMEM_ISA to \(processor.name) or lower, or unset it"
        }
    }
}
