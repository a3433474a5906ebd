import ArgumentParser

public struct Snnmem: ParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "snnmem", abstract: "Memory planning for spiking neural network training.")
    public init() {}
}
