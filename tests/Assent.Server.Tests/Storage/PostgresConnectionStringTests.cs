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
        Assert.Equal("-c plan_cache_mode=force_generic_plan", b.Options);
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

    [Theory]
    [InlineData("Host=db;Database=assent;Options=-c statement_timeout=5s", "-c statement_timeout=5s -c plan_cache_mode=force_generic_plan")]
    [InlineData("Host=db;Database=assent;Options=-c plan_cache_mode=auto", "-c plan_cache_mode=auto")]
    [InlineData("postgres://db/assent?Options=-c%20plan_cache_mode%3Dforce_custom_plan", "-c plan_cache_mode=force_custom_plan")]
    public void Generic_plans_join_the_options_given_unless_they_choose_a_plan_cache_mode(string database, string options)
    {
        var b = new NpgsqlConnectionStringBuilder(PostgresDatabase.ToConnectionString(database));

        Assert.Equal(options, b.Options);
    }
}
