import Fluent
import FluentPostgresDriver
import FluentSQLiteDriver
import RoundsDirectory
import RoundsStore
import Vapor

extension Application {
    /// Registers the database and the store's migrations. Several `rounds` processes may share
    /// one PostgreSQL; each keeps a small pool per event loop.
    public func useRoundsDatabase(_ location: DatabaseLocation, poolSizePerEventLoop: Int = 4) throws {
        switch location {
        case .sqlite(let path):
            try DatabaseLocation.restrictToOwner(path)
            databases.use(.sqlite(.file(path), sqlLogLevel: .trace), as: .sqlite)
            // The writers of this file take turns at a gate of its own (see SQLiteWriteGate).
            SQLiteWriteGate.install(on: databases, id: .sqlite)
        case .postgres(let url):
            databases.use(try .postgres(url: url, maxConnectionsPerEventLoop: poolSizePerEventLoop, sqlLogLevel: .trace), as: .psql)
        }
        migrations.add(RoundsMigrations.all)
    }
}
