import Foundation
import PackagePlugin

/// Embeds `Migrations/<tier>/NNNN_*.sql` into the target it is applied to (JobdPostgres)
/// at build time, as `Migration.embedded`, so an installed jobd carries its own schema
/// and no generated copy of the SQL lives in git. Every file is an input of the build
/// command, and the folders are listed again on every build, so an edited, added or
/// removed migration is embedded by the next `swift build`.
@main
struct EmbedMigrations: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: any Target) async throws -> [Command] {
        let root = context.package.directoryURL.appending(path: "Migrations")
        let manager = FileManager.default
        var files: [URL] = []
        for tier in try manager.contentsOfDirectory(atPath: root.path()).sorted() {
            let folder = root.appending(path: tier)
            var isDirectory: ObjCBool = false
            guard manager.fileExists(atPath: folder.path(), isDirectory: &isDirectory), isDirectory.boolValue else { continue }
            for name in try manager.contentsOfDirectory(atPath: folder.path()) where name.hasSuffix(".sql") {
                files.append(folder.appending(path: name))
            }
        }
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedMigrations.swift")
        return [
            .buildCommand(
                displayName: "Embedding \(files.count) migrations",
                executable: try context.tool(named: "MigrationEmbedder").url,
                arguments: [output.path()] + files.map { $0.path() },
                inputFiles: files,
                outputFiles: [output])
        ]
    }
}
