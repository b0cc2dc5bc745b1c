using Assent.Server.Storage.Postgres;
using Npgsql;

namespace Assent.Server.Tests.Storage;

public sealed class PostgresConnectionStringTests
{
    [Theory]
    [InlineData("Host=db.internal;Port=5433;Username=assent;Database=assent;Maximum Pool Size=64")]
    [InlineData("postgres://assent:secret@db.internal:5433/assent?Maximum%20Pool%20Size=64")]
    public void Pooled_connections_skip_the_reset_and_statements_are_prepared_unless_told_otherwise(string database)
    {
        var b = new NpgsqlConnectionStringBuilder(PostgresDatabase.ToConnectionString(database));

        Assert.True(b.NoResetOnClose);
        Assert.Equal(128, b.MaxAutoPrepare);
        Assert.Equal(2, b.AutoPrepareMinUsages);
        Assert.Equal(("db.internal", 5433, "assent", 64), (b.Host, b.Port, b.Database, b.MaxPoolSize));
    }

    [Theory]
    [InlineData("Host=db;Database=assent;No Reset On Close=false;Max Auto Prepare=0")]
    [InlineData("Host=db;Database=assent;noresetonclose=false;MaxAutoPrepare=0")]
    [InlineData("postgres://db/assent?No%20Reset%20On%20Close=false&Max%20Auto%20Prepare=0")]
    public void Settings_written_in_the_connection_string_are_kept(string database)
    {
        var b = new NpgsqlConnectionStringBuilder(PostgresDatabase.ToConnectionString(database));

        Assert.False(b.NoResetOnClose);
        Assert.Equal(0, b.MaxAutoPrepare);
    }
}
