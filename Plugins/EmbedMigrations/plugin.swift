import Foundation
import PackagePlugin

/// Embeds `Migrations/<tier>/NNNN_*.sql` into the target it is applied to (JobdPostgres)
/// at build time, as `Migration.embedded`, so an installed jobd carries its own schema
/// and no generated copy of the SQL lives in git.
///
/// SwiftPM reuses its build plan, and so the command this plugin returned, until the
/// package's manifest or sources change (a file added to `Migrations/`, outside every
/// target, is not such a change). So the command must stay right when reused: the
/// embedder is given the tier folders and lists them itself when it runs, and its inputs
/// are the folders (adding or removing a file changes its folder's modification time)
/// and the files known when the plan was made (an edit changes the file's). An added,
/// removed or edited migration is embedded by the next `swift build`, except an edit in
/// place of a file added since the plan was made (an editor that saves by rename
/// changes the folder and is seen): `touch Package.swift` makes a new plan. A declared
/// output the embedder never writes would make the command run every build, but SwiftPM
/// takes every non-Swift output for a resource to copy and fails on it.
@main
struct EmbedMigrations: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: any Target) async throws -> [Command] {
        let root = context.package.directoryURL.appending(path: "Migrations")
        let manager = FileManager.default
        var folders: [URL] = []
        var files: [URL] = []
        for tier in try manager.contentsOfDirectory(atPath: root.path()).sorted() {
            let folder = root.appending(path: tier)
            var isDirectory: ObjCBool = false
            guard manager.fileExists(atPath: folder.path(), isDirectory: &isDirectory), isDirectory.boolValue else { continue }
            folders.append(folder)
            for name in try manager.contentsOfDirectory(atPath: folder.path()) where name.hasSuffix(".sql") {
                files.append(folder.appending(path: name))
            }
        }
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedMigrations.swift")
        return [
            .buildCommand(
                displayName: "Embedding the migrations of \(folders.count) tiers",
                executable: try context.tool(named: "MigrationEmbedder").url,
                arguments: [output.path()] + folders.map { $0.path() },
                inputFiles: folders + files,
                outputFiles: [output])
        ]
    }
}
