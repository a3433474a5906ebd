// swift-tools-version:6.0
// snnmem: memory planning, measurement and training for spiking neural networks.
//
// Targets point one way: MemoryModel <- Profiles <- Planner <- (Allocator, Engine) <- Reports <- CLI.
// Engine links OpenBLAS (COpenBLAS) and zlib (CZlib) through system-library targets, and compiles
// its AVX-512 SGEMM from C (CGemm).
import PackageDescription

let package = Package(
    name: "snnmem",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "snnmem", targets: ["snnmem"]),
        .library(name: "Planner", targets: ["Planner"]),
        .library(name: "Allocator", targets: ["Allocator"]),
        .executable(name: "allocator-benchmark", targets: ["AllocatorBenchmark"]),
        .executable(name: "planner-benchmark", targets: ["PlannerBenchmark"]),
        .library(name: "Engine", targets: ["Engine"]),
        .executable(name: "engine-kernel-benchmark", targets: ["EngineKernelBenchmark"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", exact: "6.2.2"),
    ],
    targets: [
        // Byte counts, roles, shapes, lifetime events and the one peak-finding sweep. No dependencies.
        .target(name: "MemoryModel"),
        // Architecture profiles: YAML with source locations, layer tree, shape inference.
        .target(name: "Profiles", dependencies: ["MemoryModel", .product(name: "Yams", package: "Yams")]),
        // What each layer keeps for backward, per strategy; the planned lifetime trace; max batch.
        .target(name: "Planner", dependencies: ["MemoryModel", "Profiles"]),
        // The one file-system call Swift's Glibc does not offer: swapping two paths atomically.
        .target(name: "CFileSystem"),
        // Atomic, kill-safe writes of files and report folders, which replace only snnmem's own output.
        .target(name: "OutputFiles", dependencies: ["CFileSystem"]),
        // jemalloc's C API behind a module map; linking it makes jemalloc the process malloc (intended).
        .systemLibrary(name: "CJemalloc", pkgConfig: "jemalloc", providers: [.apt(["libjemalloc-dev"])]),
        // The instrumented allocator: every tensor buffer, its lifetime, the budget, jemalloc's own counters.
        .target(name: "Allocator", dependencies: ["MemoryModel", "CJemalloc", "OutputFiles"]),
        // Recording overhead per allocate+free, tracked against raw mallocx/sdallocx. Run in release.
        .executableTarget(name: "AllocatorBenchmark", dependencies: ["Allocator", "MemoryModel", "CJemalloc"]),
        // OpenBLAS's CBLAS behind a module map (the engine's GEMMs).
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        // snnmem's own AVX-512 SGEMM (C, runtime-dispatched): the conv GEMMs where the processor has
        // AVX-512, since OpenBLAS is pinned to its AVX2 kernels on these machines (see snn_gemm.h).
        .target(name: "CGemm"),
        // The kernel lanes' fork-join: persistent helper threads that spin briefly between regions.
        .target(name: "CLanes"),
        // Elementwise float32 kernels (neurons, batch norm, reductions) compiled for AVX-512, AVX2 and the
        // baseline, one chosen at run time (see snn_kernels.h): Swift compiles for the baseline only.
        .target(name: "CKernels"),
        // zlib's gzip reader (the bundled digits data set is gzipped CSV).
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // The training engine's numerical kernels: forward/backward pairs over caller-owned buffers,
        // neurons, losses, optimizers, the digits data set. Allocation is wired in a later step.
        .target(name: "Engine", dependencies: ["MemoryModel", "Profiles", "Planner", "Allocator", "COpenBLAS", "CGemm", "CLanes", "CKernels", "CZlib"]),
        // Conv forward+backward GFLOP/s of CIFARNet's conv shapes beside raw cblas_sgemm. Run in release.
        .executableTarget(name: "EngineKernelBenchmark", dependencies: ["Engine", "Profiles", "COpenBLAS", "CGemm"]),
        // Reports read measured and planned traces and write tables, timelines and CI gates.
        .target(name: "Reports", dependencies: ["MemoryModel", "Planner", "Allocator", "OutputFiles"]),
        // Thin argument-parser commands over the library targets.
        .target(name: "CLI", dependencies: [
            "MemoryModel", "Profiles", "Planner", "Allocator", "Engine", "Reports", "OutputFiles",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // The CLI carries the Swift runtime and Foundation inside it (-static-stdlib): a planning command's
        // own work is a few milliseconds, and resolving the shared Swift libraries' symbols at every start
        // cost about 5 ms more (issue 11: `check` of every bundled profile 54.9 -> 48.9 ms, `plan` 16.4 ->
        // 11.6 ms). The static Foundation's own libraries are named because only SwiftPM's whole-build
        // --static-swift-stdlib pulls them in, and that flag would also link the XCTest bundle statically.
        .executableTarget(name: "snnmem", dependencies: ["CLI"], linkerSettings: [.unsafeFlags(["-static-stdlib", "-Xlinker", "--start-group", "-Xlinker", "-l:libFoundation.a", "-Xlinker", "-l:libFoundationEssentials.a", "-Xlinker", "-l:libFoundationInternationalization.a", "-Xlinker", "-l:lib_FoundationICU.a", "-Xlinker", "-l:lib_FoundationCollections.a", "-Xlinker", "-l:lib_FoundationCShims.a", "-Xlinker", "-l:libCoreFoundation.a", "-Xlinker", "-l:libswiftSynchronization.a", "-Xlinker", "--end-group"])]),
        .executableTarget(name: "PlannerBenchmark", dependencies: ["Planner", "Profiles", "MemoryModel"]),
        .testTarget(name: "MemoryModelTests", dependencies: ["MemoryModel"]),
        .testTarget(name: "ProfilesTests", dependencies: ["Profiles", "MemoryModel"], exclude: ["BadProfiles"]),
        .testTarget(name: "PlannerTests", dependencies: ["Planner", "Profiles", "MemoryModel"], exclude: ["Fixtures"]),
        .testTarget(name: "AllocatorTests", dependencies: ["Allocator", "MemoryModel", "CJemalloc"]),
        // Snapshots are the expected report files, compared by the tests, not resources.
        .testTarget(name: "ReportsTests", dependencies: ["Reports", "Planner", "Profiles", "Allocator", "MemoryModel", "OutputFiles"],
                    exclude: ["__Snapshots__"]),
        .testTarget(name: "CLITests", dependencies: ["CLI", "Planner", "Profiles", "MemoryModel", "Engine"]),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "Allocator", "Planner", "Profiles", "MemoryModel", "CGemm", "CLanes", "CKernels", "COpenBLAS"]),
    ],
    swiftLanguageModes: [.v5]
)
