import Foundation
import Testing

/// Package.swift's target graph, read from its text: for every target declared with
/// `.target`, `.executableTarget`, `.systemLibrary` (and `.testTarget`), its name and
/// the targets of this package it depends on (`.product(…)` entries are external).
struct PackageGraph {
    var dependencies: [String: Set<String>] = [:]
    var testTargets: Set<String> = []

    init(manifest text: String) throws {
        let kinds = [".target(", ".executableTarget(", ".systemLibrary(", ".testTarget("]
        var index = text.startIndex
        while let (kind, open) = Self.nextCall(in: text, from: index, kinds: kinds) {
            let body = try Self.balanced(text, from: open, open: "(", close: ")")
            index = body.upperBound
            let call = String(text[body])
            guard let name = Self.strings(in: Self.after("name:", in: call) ?? "").first else {
                throw ManifestError("a \(kind) without a name")
            }
            var dependencies = Set<String>()
            if let start = call.range(of: "dependencies: [") {
                let list = try Self.balanced(call, from: call.index(before: start.upperBound), open: "[", close: "]")
                dependencies = Set(Self.strings(in: Self.removingCalls(".product(", from: String(call[list]))))
            }
            self.dependencies[name] = dependencies
            if kind == ".testTarget(" { testTargets.insert(name) }
        }
    }

    struct ManifestError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    private static func nextCall(in text: String, from: String.Index, kinds: [String]) -> (String, String.Index)? {
        kinds.compactMap { kind in text.range(of: kind, range: from..<text.endIndex).map { (kind, $0) } }
            .min { $0.1.lowerBound < $1.1.lowerBound }
            .map { ($0.0, text.index(before: $0.1.upperBound)) }
    }

    /// The range from the bracket at `start` to its matching close, exclusive of both.
    private static func balanced(_ text: String, from start: String.Index, open: Character, close: Character) throws -> Range<String.Index> {
        var depth = 0
        var inString = false
        var index = start
        while index < text.endIndex {
            let character = text[index]
            if character == "\"" { inString.toggle() }
            if !inString {
                if character == open { depth += 1 }
                if character == close {
                    depth -= 1
                    if depth == 0 { return text.index(after: start)..<index }
                }
            }
            index = text.index(after: index)
        }
        throw ManifestError("unbalanced \(open)")
    }

    private static func after(_ marker: String, in text: String) -> String? {
        text.range(of: marker).map { String(text[$0.upperBound...]) }
    }

    /// The string literals of `text`, in order.
    private static func strings(in text: String) -> [String] {
        text.split(separator: "\"", omittingEmptySubsequences: false).enumerated()
            .filter { $0.offset % 2 == 1 }.map { String($0.element) }
    }

    private static func removingCalls(_ call: String, from text: String) -> String {
        var text = text
        while let start = text.range(of: call),
              let body = try? balanced(text, from: text.index(before: start.upperBound), open: "(", close: ")") {
            text.removeSubrange(start.lowerBound...body.upperBound)
        }
        return text
    }
}

/// A markdown table between `<!-- marker:begin -->` and `<!-- marker:end -->`:
/// the first column, and the second split at commas ("—" for none).
func markdownTable(_ marker: String, in document: String) throws -> [(String, Set<String>)] {
    guard let begin = document.range(of: "<!-- \(marker):begin -->"),
          let end = document.range(of: "<!-- \(marker):end -->", range: begin.upperBound..<document.endIndex)
    else { throw PackageGraph.ManifestError("no \(marker) table") }
    return document[begin.upperBound..<end.lowerBound].split(separator: "\n").dropFirst(2).compactMap { line in
        let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
        guard cells.count >= 2 else { return nil }
        let items = cells[1] == "—" ? [] : cells[1].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        return (cells[0], Set(items))
    }
}

@Suite("Module graph")
struct ModuleGraphTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    func load() throws -> (graph: PackageGraph, doc: String) {
        let manifest = try String(contentsOf: Self.root.appendingPathComponent("Package.swift"), encoding: .utf8)
        let doc = try String(contentsOf: Self.root.appendingPathComponent("docs/architecture.md"), encoding: .utf8)
        return (try PackageGraph(manifest: manifest), doc)
    }

    @Test("the parser reads names and in-package dependencies, not products")
    func parser() throws {
        let graph = try PackageGraph(manifest: """
            .systemLibrary(name: "CX", pkgConfig: "x", providers: [.apt(["x-dev"])]),
            .target(name: "A", swiftSettings: strict),
            .target(
                name: "B",
                dependencies: ["CX", "A", .product(name: "Logging", package: "swift-log")],
                swiftSettings: strict
            ),
            .testTarget(name: "BTests", dependencies: ["B"]),
            """)
        #expect(graph.dependencies == ["CX": [], "A": [], "B": ["CX", "A"], "BTests": ["B"]])
        #expect(graph.testTargets == ["BTests"])
    }

    @Test("docs/architecture.md's target table is Package.swift's graph (test targets aside)")
    func tableMatchesManifest() throws {
        let (graph, doc) = try load()
        let table = try markdownTable("module-graph", in: doc)
        #expect(Set(table.map(\.0)).count == table.count, "a target is listed twice")
        let documented = Dictionary(table, uniquingKeysWith: { first, _ in first })
        let declared = graph.dependencies.filter { !graph.testTargets.contains($0.key) }
        #expect(Set(documented.keys) == Set(declared.keys))
        for (target, dependencies) in declared {
            #expect(documented[target] == dependencies, "\(target): Package.swift says \(dependencies.sorted())")
        }
    }

    @Test("docs/architecture.md's module diagram names every target of Package.swift")
    func diagramNamesEveryTarget() throws {
        let (graph, doc) = try load()
        let layers = try #require(doc.range(of: "<!-- module-layers:end -->"))
        let open = try #require(doc.range(of: "```", range: layers.upperBound..<doc.endIndex))
        let close = try #require(doc.range(of: "```", range: open.upperBound..<doc.endIndex))
        let words = Set(doc[open.upperBound..<close.lowerBound].split { !$0.isLetter && !$0.isNumber }.map(String.init))
        let missing = graph.dependencies.keys.filter { !graph.testTargets.contains($0) && !words.contains($0) }
        #expect(missing.isEmpty, "missing from the diagram: \(missing.sorted())")
    }

    @Test("every dependency points to a lower layer of docs/architecture.md, and every target has a layer")
    func layersPointDown() throws {
        let (graph, doc) = try load()
        var layer: [String: Int] = [:]
        for (level, targets) in try markdownTable("module-layers", in: doc) {
            let level = try #require(Int(level))
            for target in targets { layer[target] = level }
        }
        for (target, dependencies) in graph.dependencies where !graph.testTargets.contains(target) {
            let own = try #require(layer[target], "\(target) has no layer")
            for dependency in dependencies {
                let theirs = try #require(layer[dependency], "\(dependency) has no layer")
                #expect(theirs < own, "\(target) (layer \(own)) depends on \(dependency) (layer \(theirs))")
            }
        }
    }
}
