import MemoryModel
import Profiles

/// What a GPU must hold for a PyTorch training process besides the tensors: the terms that
/// `torch.cuda.max_memory_allocated` does not count. Each is a documented default that a user
/// can override (`max-batch --cuda-context ...`), since they depend on the driver and the GPU.
public struct CUDAOverheads: Hashable, Sendable {
    /// The CUDA context, kernels and libraries loaded into the process: outside the caching
    /// allocator. About 300-400 MiB with lazy module loading (CUDA 11.7+, PyTorch's default),
    /// about twice that without.
    public var contextBytes = 400 << 20
    /// cuBLAS's workspace per handle and stream, allocated through the caching allocator on the
    /// first matmul of each thread (forward's and autograd's): 32 MiB on Hopper (sm90), 8 MiB +
    /// 128 KiB on earlier GPUs (`CublasHandlePool.cpp`, `parseChosenWorkspaceSize`).
    public var cublasWorkspaceBytes = 32 << 20
    /// Threads that run matmuls: the Python thread in forward, autograd's device thread in backward.
    public var cublasHandles = 2
    /// An allowance for cuDNN's convolution workspaces: the caching allocator serves them inside
    /// each conv and frees them after, and their size is the chosen algorithm's, so it is a
    /// margin on top of the replayed peak rather than a prediction.
    public var cudnnWorkspaceBytes = 64 << 20
    public var allocator = CUDACachingAllocator.Options()

    public init() {}
}

/// A pytorch-cuda plan replayed through the caching allocator, with the terms outside it.
public struct CUDAMemoryEstimate: Hashable, Sendable {
    /// `max_memory_allocated`: blocks handed to tensors (cuBLAS workspaces included).
    public var peakAllocatedBytes: Int
    /// `max_memory_reserved`: segments the allocator took from the driver.
    public var peakReservedBytes: Int
    public var contextBytes: Int
    public var cudnnWorkspaceBytes: Int
    /// cuBLAS workspaces inside the replay (zero for a network without matmuls).
    public var cublasWorkspaceBytes: Int
    public var segmentCount: Int

    /// What the GPU must have free for the step: reserved + cuDNN allowance + context.
    public var totalBytes: Int { peakReservedBytes + cudnnWorkspaceBytes + contextBytes }

    public var reservedOverAllocated: Double {
        peakAllocatedBytes == 0 ? 0 : Double(peakReservedBytes) / Double(peakAllocatedBytes)
    }

    /// The term that decides whether a batch fits: the largest of the step's tensors
    /// (allocated), the allocator's caching and fragmentation (reserved - allocated), and the
    /// fixed costs (context and workspaces).
    public var decidingTerm: String {
        let terms = [("tensors (allocated)", peakAllocatedBytes),
                     ("allocator cache (reserved - allocated)", peakReservedBytes - peakAllocatedBytes),
                     ("context and workspaces", contextBytes + cudnnWorkspaceBytes)]
        return terms.max { $0.1 < $1.1 }!.0
    }

    public static func estimate(_ plan: MemoryPlan, profile: Profile, overheads: CUDAOverheads = CUDAOverheads()) -> CUDAMemoryEstimate {
        precondition(plan.runtime == .pytorchCUDA, "CUDA estimates are made from pytorch-cuda plans")
        // cuBLAS workspaces exist from the first matmul on: allocated before the step's tensors.
        let usesCublas = ParameterLayout.flatten(profile.layers).contains { if case .linear = $0.kind { return true }; return false }
        let cublasCount = usesCublas ? overheads.cublasHandles : 0
        let firstID = plan.tensors.count
        let workspaces = (0..<cublasCount).map {
            LifetimeEvent(kind: .allocate, tensorID: firstID + $0, bytes: overheads.cublasWorkspaceBytes, role: .workspace, phase: .setup)
        }
        let replay = CUDAAllocatorReplay(options: overheads.allocator).run(plan.events, liveAtStart: workspaces)
        return CUDAMemoryEstimate(peakAllocatedBytes: replay.peakAllocatedBytes, peakReservedBytes: replay.peakReservedBytes,
                                  contextBytes: overheads.contextBytes, cudnnWorkspaceBytes: overheads.cudnnWorkspaceBytes,
                                  cublasWorkspaceBytes: cublasCount * overheads.cublasWorkspaceBytes,
                                  segmentCount: replay.segmentCount)
    }
}
