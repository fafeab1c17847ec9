// panva/node-oidc-provider (OpenID Certified) as the hospital's identity provider in
// tests/security/test_oidc_interop.py: one confidential client (twinpacs), any user name signs
// in through the library's own login and consent pages. Claims follow its defaults: the ID
// token carries sub only, preferred_username and roles come from the userinfo endpoint.
// Usage: node provider.mjs PORT CLIENT_ID CLIENT_SECRET REDIRECT_URI POST_LOGOUT_REDIRECT_URI
import Provider from 'oidc-provider';

const [port, clientId, clientSecret, redirectUri, postLogoutRedirectUri] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId, client_secret: clientSecret, redirect_uris: [redirectUri],
    post_logout_redirect_uris: [postLogoutRedirectUri], grant_types: ['authorization_code'],
    response_types: ['code'],
  }],
  claims: { openid: ['sub'], profile: ['preferred_username', 'roles'] },
  async findAccount(ctx, id) {
    // "reader-NAME" holds the group twinpacs maps to radiologist; anyone else holds none.
    const roles = id.startsWith('reader-') ? ['pacs-readers'] : ['staff'];
    return { accountId: id, async claims() { return { sub: id, preferred_username: id, roles }; } };
  },
  features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
});
provider.listen(Number(port), '127.0.0.1', () => console.log(`listening on ${issuer}`));
