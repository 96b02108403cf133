import Foundation
import NIOCore
import Vapor

/// A local server that speaks the two OpenAI-style protocols the round notes use:
/// `POST /v1/audio/transcriptions` (multipart: file, model, language, prompt) and
/// `POST /v1/chat/completions` (JSON schema answer). Each can be told how to answer next:
/// well, with an HTTP error, too slowly, or with garbage.
final class FakeSpeechServer: @unchecked Sendable {
    enum Mode: Sendable { case ok(String), status(HTTPStatus), slow(seconds: Int), garbage(String) }
    struct Transcription { var model: String; var language: String; var prompt: String; var fileSize: Int; var contentType: String; var authorization: String? }

    private let lock = NSLock()
    private var _asr: Mode = .ok("患者今日咳嗽减轻。查体体温三十六度八。诊断社区获得性肺炎。计划继续头孢曲松。")
    private var _llm: Mode = .ok("")
    private var _transcriptions: [Transcription] = []
    private var _completions: [[String: Any]] = []
    private let app: Application
    private(set) var port = 0

    private init(app: Application) { self.app = app }
    var base: String { "http://127.0.0.1:\(port)" }
    var transcriptions: [Transcription] { lock.withLock { _transcriptions } }
    var completions: [[String: Any]] { lock.withLock { _completions } }
    func answerTranscriptions(_ mode: Mode) { lock.withLock { _asr = mode } }
    func answerCompletions(_ mode: Mode) { lock.withLock { _llm = mode } }

    static func start() async throws -> FakeSpeechServer {
        let app = try await Application.make(.testing)
        let server = FakeSpeechServer(app: app)
        app.on(.POST, "v1", "audio", "transcriptions", body: .collect(maxSize: "30mb")) { req in try await server.transcribe(req) }
        app.on(.POST, "v1", "chat", "completions", body: .collect(maxSize: "1mb")) { req in try await server.complete(req) }
        server.port = try await LocalHTTP.serve(app)
        return server
    }

    func stop() async {
        await app.server.shutdown()
        try? await app.asyncShutdown()
    }

    private func respond(_ mode: Mode, _ body: () -> [String: Any]) async throws -> Response {
        switch mode {
        case .status(let status): return Response(status: status, body: .init(string: #"{"error":{"message":"model overloaded"}}"#))
        case .slow(let seconds):
            try await Task.sleep(for: .seconds(seconds))
            return Response(status: .ok, body: .init(data: try JSONSerialization.data(withJSONObject: body())))
        case .garbage(let text): return Response(status: .ok, body: .init(string: text))
        case .ok: return Response(status: .ok, body: .init(data: try JSONSerialization.data(withJSONObject: body())))
        }
    }

    private func transcribe(_ req: Request) async throws -> Response {
        struct Form: Content { var file: File; var model: String; var language: String?; var prompt: String?; var response_format: String? }
        guard let form = try? req.content.decode(Form.self), form.file.data.readableBytes > 0 else {
            return Response(status: .badRequest, body: .init(string: #"{"error":{"message":"file is required"}}"#))
        }
        lock.withLock {
            _transcriptions.append(Transcription(model: form.model, language: form.language ?? "", prompt: form.prompt ?? "",
                                                 fileSize: form.file.data.readableBytes, contentType: form.file.contentType?.description ?? "",
                                                 authorization: req.headers.first(name: .authorization)))
        }
        let mode = lock.withLock { _asr }
        guard case .ok(let text) = mode else { return try await respond(mode) { ["text": "late"] } }
        return try await respond(mode) { ["text": text] }
    }

    private func complete(_ req: Request) async throws -> Response {
        let body = req.body.data.map { Data(buffer: $0) } ?? Data()
        let json = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:]
        lock.withLock { _completions.append(json) }
        let mode = lock.withLock { _llm }
        guard let format = json["response_format"] as? [String: Any], format["type"] as? String == "json_schema" else {
            return Response(status: .badRequest, body: .init(string: #"{"error":{"message":"response_format json_schema expected"}}"#))
        }
        let content: String
        if case .ok(let text) = mode, !text.isEmpty { content = text } else {
            content = #"{"complaint":"咳嗽减轻","examination":"体温36.8℃","investigations":"","diagnosis":"社区获得性肺炎","plan":"继续头孢曲松"}"#
        }
        return try await respond(mode) { ["id": "chatcmpl-1", "object": "chat.completion", "choices": [["index": 0, "message": ["role": "assistant", "content": content], "finish_reason": "stop"]]] }
    }
}
