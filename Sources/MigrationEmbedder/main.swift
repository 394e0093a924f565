import Foundation

// MigrationEmbedder OUTPUT PATH…: writes OUTPUT, a Swift file defining
// `Migration.embedded`, one `Migration` per `.sql` file, ordered by file name (the
// number is one sequence across every tier's folder). A PATH that is a folder stands
// for the `.sql` files in it, listed when this runs; any other PATH is one file. Run by
// the EmbedMigrations build plugin with the tier folders; fails (and so fails the
// build) on a file it cannot embed exactly.
//
// A file named `NNNN_<name>.sql` becomes `Migration(version: NNNN, name: "<name>",
// sql: …)` whose `sql` is the file's text without its final line break, in a raw
// string literal whose delimiter has one `#` more than the longest run of `#` in the
// text, so no text can end the literal or start an interpolation.

struct EmbedError: Error, CustomStringConvertible {
    var description: String
}

func migration(_ path: String) throws -> (file: String, source: String) {
    let file = URL(fileURLWithPath: path).lastPathComponent
    let stem = file.dropLast(".sql".count)
    let parts = stem.split(separator: "_", maxSplits: 1)
    guard file.hasSuffix(".sql"), parts.count == 2, parts[0].count == 4,
          parts[0].utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }), let version = Int(parts[0]),
          parts[1].utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") })
    else {
        throw EmbedError(description: "\(path): a migration is named NNNN_<tier>[_<what>].sql")
    }
    guard let data = FileManager.default.contents(atPath: path), var text = String(data: data, encoding: .utf8) else {
        throw EmbedError(description: "\(path): not readable as UTF-8")
    }
    // A multi-line literal turns CR and CRLF into LF and refuses most control
    // characters: embedding such a file would change its text (and its checksum).
    if let bad = text.unicodeScalars.first(where: { $0.value < 0x20 && $0 != "\n" && $0 != "\t" || $0.value == 0x7F }) {
        throw EmbedError(description: "\(path): control character U+\(String(bad.value, radix: 16, uppercase: true)) (use LF line endings)")
    }
    if text.hasSuffix("\n") { text.removeLast() }
    var longestRun = 0
    var run = 0
    for character in text.utf8 {
        run = character == UInt8(ascii: "#") ? run + 1 : 0
        longestRun = max(longestRun, run)
    }
    let hashes = String(repeating: "#", count: longestRun + 1)
    let source = "        Migration(version: \(version), name: \"\(parts[1])\", sql: \(hashes)\"\"\"\n"
        + text + "\n\"\"\"\(hashes)),\n"
    return (file, source)
}

do {
    let arguments = CommandLine.arguments.dropFirst()
    guard let output = arguments.first else { throw EmbedError(description: "usage: MigrationEmbedder OUTPUT PATH…") }
    var files: [String] = []
    for path in arguments.dropFirst() {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            files += try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.hasSuffix(".sql") }
                .map { URL(fileURLWithPath: path).appendingPathComponent($0).path }
        } else {
            files.append(path)
        }
    }
    let migrations = try files.map(migration).sorted { $0.file.utf8.lexicographicallyPrecedes($1.file.utf8) }
    for (a, b) in zip(migrations, migrations.dropFirst()) where a.file.prefix(4) == b.file.prefix(4) {
        throw EmbedError(description: "two migrations numbered \(a.file.prefix(4)): \(a.file), \(b.file)")
    }
    let swift = "// Generated at build time by the EmbedMigrations plugin from Migrations/<tier>/*.sql.\n"
        + "extension Migration {\n    public static let embedded: [Migration] = [\n"
        + migrations.map(\.source).joined() + "    ]\n}\n"
    // Unchanged text is not written again: the file's time is what recompiles its target.
    if FileManager.default.contents(atPath: output) != Data(swift.utf8) {
        try Data(swift.utf8).write(to: URL(fileURLWithPath: output), options: .atomic)
    }
} catch {
    FileHandle.standardError.write(Data("MigrationEmbedder: \(error)\n".utf8))
    exit(1)
}
