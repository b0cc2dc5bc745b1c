using Assent.Protocol.Did;

namespace Assent.Protocol.Tests.Did;

public sealed class DidWebTests
{
    [Theory]
    [InlineData("http://localhost:8400", "usr_1", "did:web:localhost%3A8400:users:usr_1")]
    [InlineData("https://example.com", "u", "did:web:example.com:users:u")]
    [InlineData("https://example.com/", "u", "did:web:example.com:users:u")]
    [InlineData("https://example.com:443", "u", "did:web:example.com:users:u")]
    [InlineData("https://example.com/assent", "u", "did:web:example.com:assent:users:u")]
    [InlineData("https://example.com/assent/", "u", "did:web:example.com:assent:users:u")]
    [InlineData("https://example.com:8443/a/b", "u", "did:web:example.com%3A8443:a:b:users:u")]
    [InlineData("https://Example.COM", "u", "did:web:example.com:users:u")]
    public void ForUser_builds_the_did_of_an_issuer(string issuer, string userId, string did)
    {
        Assert.Equal(did, DidWeb.ForUser(new Uri(issuer), userId));
    }

    [Theory]
    [InlineData("did:web:localhost%3A8400:users:usr_1", "http://localhost:8400/users/usr_1/did.json")]
    [InlineData("did:web:127.0.0.1%3A8400:users:usr_1", "http://127.0.0.1:8400/users/usr_1/did.json")]
    [InlineData("did:web:example.com:users:u", "https://example.com/users/u/did.json")]
    [InlineData("did:web:example.com:assent:users:u", "https://example.com/assent/users/u/did.json")]
    [InlineData("did:web:example.com%3A8443:users:u", "https://example.com:8443/users/u/did.json")]
    [InlineData("did:web:example.com", "https://example.com/.well-known/did.json")]
    public void TryGetDocumentUrl_maps_a_did_to_its_document(string did, string url)
    {
        Assert.True(DidWeb.TryGetDocumentUrl(did, out var documentUrl));
        Assert.Equal(url, documentUrl!.AbsoluteUri);
    }

    [Theory]
    [InlineData("http://localhost:8400", "usr_1")]
    [InlineData("https://example.com", "u")]
    [InlineData("https://example.com/assent", "usr_42")]
    public void An_issuer_did_resolves_to_the_issuer_users_document(string issuer, string userId)
    {
        Assert.True(DidWeb.TryGetDocumentUrl(DidWeb.ForUser(new Uri(issuer), userId), out var url));
        Assert.Equal(new Uri(new Uri(issuer.TrimEnd('/') + "/"), $"users/{userId}/did.json"), url);
    }

    [Theory]
    [InlineData("")]
    [InlineData("did:web:")]
    [InlineData("did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK")]
    [InlineData("DID:WEB:example.com:users:u")]
    [InlineData("did:web:example.com::users:u")]
    [InlineData("did:web:example.com:users:")]
    [InlineData("did:web::users:u")]
    [InlineData("did:web:example.com%2Fevil.com:users:u")]
    [InlineData("did:web:a/b:users:u")]
    [InlineData("did:web:user%40evil.com:users:u")]
    [InlineData("did:web:example.com@evil.com:users:u")]
    [InlineData("did:web:evil.com%5Cexample.com:users:u")]
    [InlineData("did:web:evil.com%23:users:u")]
    [InlineData("did:web:evil.com%3F:users:u")]
    [InlineData("did:web:example.com%3A:users:u")]
    [InlineData("did:web:example.com%3Ahttp:users:u")]
    [InlineData("did:web:example.com:..:users:u")]
    public void TryGetDocumentUrl_refuses_what_is_not_a_plain_did_web(string did)
    {
        Assert.False(DidWeb.TryGetDocumentUrl(did, out var url));
        Assert.Null(url);
    }

    [Theory]
    [InlineData("did:web:localhost%3A8400:users:usr_1", "usr_1")]
    [InlineData("did:web:example.com:assent:users:u", "u")]
    [InlineData("did:web:example.com:users:users:u", "u")]
    public void TryGetUserId_reads_the_last_segment_after_users(string did, string userId)
    {
        Assert.True(DidWeb.TryGetUserId(did, out var id));
        Assert.Equal(userId, id);
    }

    [Theory]
    [InlineData("did:web:example.com")]
    [InlineData("did:web:example.com:users:")]
    [InlineData("did:key:users:u")]
    [InlineData("did:web:example.com:people:u")]
    public void TryGetUserId_refuses_other_dids(string did)
    {
        Assert.False(DidWeb.TryGetUserId(did, out _));
    }
}
