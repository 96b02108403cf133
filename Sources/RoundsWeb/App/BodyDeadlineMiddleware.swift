import NIOConcurrencyHelpers
import NIOCore
import RoundsCore
import Vapor

/// Reads a request's body before the route does, within a deadline: a client that sends its
/// headers and then trickles (or stops sending) the body gets a 408 and its connection closed,
/// instead of holding a connection and a buffer for as long as it likes. The route's own size
/// limit applies (routes record it in `userInfo`).
struct BodyDeadlineMiddleware: AsyncMiddleware {
    static let maximumSizeKey = "rounds.maximumBodySize"
    let timeout: Duration

    func respond(to request: Request, chainingTo next: any AsyncResponder) async throws -> Response {
        guard request.body.data == nil, request.headers.first(name: .contentLength) != "0",
              request.method != .GET, request.method != .HEAD else {
            return try await next.respond(to: request)
        }
        let limit = (request.route?.userInfo[Self.maximumSizeKey] as? ByteCount) ?? request.application.routes.defaultMaxBodySize
        let promise = request.eventLoop.makePromise(of: Void.self)
        let settled = NIOLockedValueBox(false)
        let settle: @Sendable (Result<Void, any Error>) -> Void = { result in
            guard settled.withLockedValue({ done in defer { done = true }; return !done }) else { return }
            promise.completeWith(result)
        }
        let deadline = request.eventLoop.scheduleTask(in: TimeAmount(timeout)) {
            settle(.failure(RoundsError.requestTimeout))
        }
        request.eventLoop.execute {
            request.body.collect(max: limit.value).whenComplete { result in
                deadline.cancel()
                settle(result.map { _ in })
            }
        }
        do {
            try await promise.futureResult.get()
        } catch let error as RoundsError where error.code == RoundsError.requestTimeout.code {
            request.logger.notice("request body did not arrive in time; closing the connection",
                                  metadata: ["path": .string(request.url.path)])
            return try await Self.answerAndHangUp(ProblemMiddleware.problemResponse(error, for: request))
        }
        return try await next.respond(to: request)
    }

    /// Sends the answer, then ends the connection: Vapor keeps a keep-alive connection open after
    /// any complete response, and this client's unfinished body would keep it busy. A body
    /// stream that fails after its last byte makes Vapor close the connection.
    static func answerAndHangUp(_ response: Response) -> Response {
        let bytes = response.body.buffer ?? ByteBuffer()
        response.body = .init(stream: { writer in
            writer.write(.buffer(bytes)).whenComplete { _ in
                writer.write(.error(RoundsError.requestTimeout), promise: nil)
            }
        }, count: bytes.readableBytes)
        return response
    }
}
