import Foundation
import RoundsConnectors
import RoundsCore

/// Why the recogniser or the model gave nothing usable: shown to the doctor (who types instead)
/// and kept on the note. Never carries a key.
public struct SpeechServiceError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The hospital's speech recogniser, spoken to in the OpenAI-style protocol that whisper.cpp's
/// server, faster-whisper-server, FunASR and others serve:
///
///     POST {base}/v1/audio/transcriptions   (multipart/form-data)
///       file=<audio>  model=<name>  language=zh  prompt=<ward vocabulary>  response_format=json
///     → 200 {"text": "…"}
///
/// `base` is the hospital's own server: the audio goes nowhere else.
public struct OpenAITranscriber: Sendable {
    public var http: HTTPPoster
    public init(http: HTTPPoster) { self.http = http }

    public func transcribe(_ audio: Data, contentType: String, base: String, model: String, language: String, prompt: String,
                           key: String?) async throws -> String {
        let boundary = "rounds-" + UUID().uuidString
        var body = Data()
        func part(_ name: String, _ value: String) {
            body.append("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n\(value)\r\n".data(using: .utf8)!)
        }
        let ext = contentType.contains("wav") ? "wav" : contentType.contains("ogg") ? "ogg" : contentType.contains("mp4") ? "m4a" : "webm"
        body.append("--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"round.\(ext)\"\r\nContent-Type: \(contentType)\r\n\r\n".data(using: .utf8)!)
        body.append(audio)
        body.append("\r\n".data(using: .utf8)!)
        part("model", model)
        if !language.isEmpty { part("language", language) }
        if !prompt.isEmpty { part("prompt", prompt) }
        part("response_format", "json")
        body.append("--\(boundary)--\r\n".data(using: .utf8)!)
        var headers = [("Content-Type", "multipart/form-data; boundary=\(boundary)")]
        if let key, !key.isEmpty { headers.append(("Authorization", "Bearer \(key)")) }
        let answer = try await Self.post(http, Self.endpoint(base, "v1/audio/transcriptions"), headers, body, service: "speech recogniser")
        guard let object = try? JSONSerialization.jsonObject(with: answer) as? [String: Any], let text = object["text"] as? String else {
            throw SpeechServiceError("the speech recogniser's answer has no text")
        }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw SpeechServiceError("the speech recogniser heard nothing") }
        return String(trimmed.prefix(20_000))
    }

    /// `base` + path, whether or not `base` already ends in /v1.
    static func endpoint(_ base: String, _ path: String) throws -> String {
        var trimmed = base.trimmingCharacters(in: .whitespaces)
        while trimmed.hasSuffix("/") { trimmed.removeLast() }
        if trimmed.hasSuffix("/v1") { trimmed.removeLast(3) }
        guard let url = URL(string: trimmed), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https", url.host != nil else {
            throw SpeechServiceError("the service address is not an http(s) address")
        }
        return trimmed + "/" + path
    }

    static func post(_ http: HTTPPoster, _ url: String, _ headers: [(String, String)], _ body: Data, service: String) async throws -> Data {
        let answer: HTTPPoster.Answer
        do {
            answer = try await http.post(url, headers, body)
        } catch {
            let text = "\(error)".lowercased()
            throw SpeechServiceError(text.contains("deadline") || text.contains("timeout") || text.contains("timed out")
                                     ? "the \(service) did not answer in time" : "could not reach the \(service)")
        }
        guard (200..<300).contains(answer.status) else { throw SpeechServiceError("the \(service) answered HTTP \(answer.status)") }
        return answer.body
    }
}

/// The hospital's language model, asked to fill the note's sections from the transcript in the
/// OpenAI-style chat completions protocol with a JSON schema (vLLM, llama.cpp's server, Ollama
/// and others serve it):
///
///     POST {base}/v1/chat/completions
///       {"model": …, "messages": [system, user], "temperature": 0,
///        "response_format": {"type": "json_schema", "json_schema": {"name": "ward_round_note", "strict": true, "schema": …}}}
///     → 200 {"choices": [{"message": {"content": "{\"complaint\": …, …}"}}]}
///
/// The answer is checked here against the same schema: every section a string, nothing else
/// taken; anything else is an error and the rules fill the note instead.
public struct OpenAIChatStructurer: Sendable {
    public var http: HTTPPoster
    public init(http: HTTPPoster) { self.http = http }

    public static var schema: [String: Any] { [
        "type": "object", "additionalProperties": false,
        "required": NoteSection.allCases.map(\.rawValue),
        "properties": Dictionary(uniqueKeysWithValues: NoteSection.allCases.map { ($0.rawValue, ["type": "string", "description": $0.titleZH] as [String: Any]) }),
    ] }

    static let instructions = """
        你是医院查房记录的书写助手。把医生口述的查房内容整理成查房记录的五个部分：\
        complaint（主诉/病情变化）、examination（查体）、investigations（辅助检查）、diagnosis（诊断）、plan（诊疗计划/医嘱建议）。\
        只使用口述和给出的资料中的内容，不要编造；数值写成阿拉伯数字并带单位；没有提到的部分写空字符串。只输出 JSON。
        """

    public func structure(transcript: String, context: String, base: String, model: String, key: String?) async throws -> NoteSections {
        let request: [String: Any] = [
            "model": model, "temperature": 0,
            "messages": [
                ["role": "system", "content": Self.instructions],
                ["role": "user", "content": (context.isEmpty ? "" : "患者资料：\n\(context)\n\n") + "口述：\n\(transcript)"],
            ],
            "response_format": ["type": "json_schema", "json_schema": ["name": "ward_round_note", "strict": true, "schema": Self.schema]],
        ]
        let body = try JSONSerialization.data(withJSONObject: request, options: [.sortedKeys])
        var headers = [("Content-Type", "application/json; charset=utf-8")]
        if let key, !key.isEmpty { headers.append(("Authorization", "Bearer \(key)")) }
        let answer = try await OpenAITranscriber.post(http, OpenAITranscriber.endpoint(base, "v1/chat/completions"), headers, body, service: "language model")
        return try Self.sections(fromAnswer: answer)
    }

    /// The sections in a chat-completions answer, checked against the schema.
    static func sections(fromAnswer data: Data) throws -> NoteSections {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let choices = object["choices"] as? [[String: Any]], let message = choices.first?["message"] as? [String: Any],
              let content = message["content"] as? String else {
            throw SpeechServiceError("the language model's answer is not a chat completion")
        }
        // Some servers wrap JSON in a code fence despite the schema.
        var json = content.trimmingCharacters(in: .whitespacesAndNewlines)
        if json.hasPrefix("```") {
            json = json.drop { $0 != "\n" }.trimmingCharacters(in: .whitespacesAndNewlines)
            if json.hasSuffix("```") { json = String(json.dropLast(3)) }
        }
        guard let fields = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else {
            throw SpeechServiceError("the language model's note is not JSON")
        }
        var sections = NoteSections()
        for section in NoteSection.allCases {
            guard let value = fields[section.rawValue] else { throw SpeechServiceError("the language model's note has no \(section.rawValue)") }
            guard let text = value as? String else { throw SpeechServiceError("the language model's \(section.rawValue) is not text") }
            sections[section] = text
        }
        do { return try sections.validated() } catch { throw SpeechServiceError("the language model's note is too long") }
    }
}
