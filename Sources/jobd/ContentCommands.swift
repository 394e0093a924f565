import ArgumentParser
import Foundation
import JobdAssembly
import JobdContent
import JobdCore
import JobdPostgres
import JobdQueue

/// `jobd content …`: read the content tier (its own database when
/// JOBD_CONTENT_DATABASE_URL is set).
struct ContentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "content", abstract: "Stored email content: print one message, search, sizes, apply retention.",
        subcommands: [Get.self, Search.self, Stats.self, Purge.self])

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a stored message, decompressed (bodies and attachments verified).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The message's external_id.") var externalID: String
        @Option(help: "Print only this body, as stored: text or html.") var part: String?
        @Flag(help: "Print JSON in the content.write payload's shape (attachments as data_base64).") var json = false

        func validate() throws {
            if let part, !["text", "html"].contains(part) { throw ValidationError("--part must be text or html") }
            if part != nil && json { throw ValidationError("--part and --json exclude each other") }
        }

        func run() async throws {
            let stored = try await withContentStore(global) { store, _ in
                do {
                    return try await store.message(externalID: externalID)
                } catch let error as ContentStore.ReadError {
                    throw CLIError("\(externalID): \(error)")
                }
            }
            guard let stored else { throw CLIError("no message with external_id \(externalID)") }
            let message = stored.message
            if let part {
                guard let body = part == "text" ? message.text : message.html else {
                    throw CLIError("\(externalID) has no \(part) body" + (stored.archivedAt != nil ? " (archived)" : ""))
                }
                let shown = TerminalText.escape(body, multiline: true)
                print(shown, terminator: shown.hasSuffix("\n") ? "" : "\n")
                return
            }
            if json {
                let object: [String: Any] = [
                    "external_id": message.externalID, "tenant_id": message.tenantID,
                    "campaign_id": message.campaignID ?? NSNull(), "from": message.from, "to": message.to,
                    "subject": message.subject,
                    "headers": Dictionary(message.headers.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a }),
                    "text": message.text ?? NSNull(), "html": message.html ?? NSNull(),
                    "attachments": message.attachments.map {
                        ["filename": $0.filename, "content_type": $0.contentType, "data_base64": Base64.encode($0.data)]
                    },
                    "created_at": stored.createdAt, "archived_at": stored.archivedAt ?? NSNull(),
                    "raw_bytes": stored.rawBytes, "stored_bytes": stored.storedBytes,
                ]
                let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
                print(TerminalText.json(String(decoding: data, as: UTF8.self)))
                return
            }
            // Every stored field is the sender's text: escaped for the terminal.
            func line(_ text: String) -> String { TerminalText.escape(text) }
            print("external_id: \(line(message.externalID))")
            print("tenant_id:   \(line(message.tenantID))")
            if let campaign = message.campaignID { print("campaign_id: \(line(campaign))") }
            print("created_at:  \(line(stored.createdAt))")
            if let archived = stored.archivedAt { print("archived_at: \(line(archived)) (bodies and attachments removed by retention)") }
            print("From: \(line(message.from))")
            print("To: \(line(message.to.joined(separator: ", ")))")
            print("Subject: \(line(message.subject))")
            for header in message.headers { print("\(line(header.name)): \(line(header.value))") }
            print("size: \(stored.rawBytes) bytes raw, \(stored.storedBytes) bytes stored")
            for (index, attachment) in message.attachments.enumerated() {
                print("attachment \(index + 1): \(line(attachment.filename)) (\(line(attachment.contentType)), \(attachment.data.count) bytes)")
            }
            if let text = message.text { print("\n----- text -----\n\(TerminalText.escape(text, multiline: true))") }
            if let html = message.html { print("\n----- html -----\n\(TerminalText.escape(html, multiline: true))") }
        }
    }

    struct Search: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Full-text search over subjects and bodies, best match first.",
            discussion: "QUERY is web-search syntax: words, \"a phrase\", -excluded, a OR b.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The query.") var query: String
        @Option(help: "Only this tenant's messages.") var tenant: String?
        @Option(help: "At most this many (1…1000).") var limit = 20
        @Flag(help: "Print JSON.") var json = false

        func validate() throws {
            if !(1...1000).contains(limit) { throw ValidationError("--limit must be 1…1000") }
        }

        func run() async throws {
            let hits = try await withContentStore(global) { store, _ in
                try await store.search(query, tenant: tenant, limit: limit)
            }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(TerminalText.json(String(decoding: try encoder.encode(hits), as: UTF8.self)))
                return
            }
            if hits.isEmpty {
                print("no matches")
                return
            }
            print("rank\texternal_id\ttenant_id\tcreated_at\tsubject")
            for hit in hits {
                let fields = [String(format: "%.4f", hit.rank), hit.externalID, hit.tenantID, hit.createdAt, hit.subject]
                print(fields.map { TerminalText.escape($0) }.joined(separator: "\t"))
            }
        }
    }

    struct Stats: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Messages and their raw and stored (compressed, de-duplicated) sizes.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Only this tenant.") var tenant: String?
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let stats = try await withContentStore(global) { store, _ in try await store.stats(tenant: tenant) }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(stats), as: UTF8.self))
                return
            }
            func ratio(_ stored: Int, _ raw: Int) -> String {
                raw == 0 ? "-" : String(format: "%.3f", Double(stored) / Double(raw))
            }
            print("messages: \(stats.messages) (archived \(stats.archived), waiting for the search index \(stats.unindexed))")
            print("raw_bytes: \(stats.rawBytes)")
            print("stored_bytes: \(stats.storedBytes) (stored/raw \(ratio(stats.storedBytes, stats.rawBytes)))")
            print("bodies: \(stats.bodyRawBytes) raw, \(stats.bodyStoredBytes) stored (\(ratio(stats.bodyStoredBytes, stats.bodyRawBytes)))")
            print("attachments: \(stats.attachments) (\(stats.distinctAttachments) distinct), \(stats.attachmentRawBytes) raw, \(stats.attachmentStoredBytes) stored (\(ratio(stats.attachmentStoredBytes, stats.attachmentRawBytes)))")
        }
    }

    struct Purge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Apply retention now, as the content.purge job does (JOBD_CONTENT_RETENTION, content.tenant_retention).")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Stop after this many messages.") var maxMessages: Int?

        func validate() throws {
            if let maxMessages, maxMessages < 1 { throw ValidationError("--max-messages must be at least 1") }
        }

        func run() async throws {
            let report = try await withContentStore(global) { store, connections in
                try await store.purge(settings: connections.settings.content, maxMessages: maxMessages ?? .max)
            }
            print("purged: \(report.purged), archived: \(report.archived), attachment blobs deleted: \(report.blobsDeleted)")
        }
    }
}

/// The admin prelude for the content tier: configuration, one connection to the
/// content database (a one-line error if it cannot be reached), always closed.
private func withContentStore<T: Sendable>(
    _ global: GlobalOptions, _ body: (ContentStore, Connections) async throws -> T
) async throws -> T {
    let connections = Connections(settings: try await ConfigurationLoader.load(global))
    let store = ContentStore(connection: try await connections.checkedPostgres("content", tier: .content))
    do {
        let result = try await body(store, connections)
        await store.close()
        return result
    } catch let error as PostgresError {
        await store.close()
        throw CLIError("content query failed: \(error)")
    } catch {
        await store.close()
        throw error
    }
}
