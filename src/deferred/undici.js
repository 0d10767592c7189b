// Stands in for undici in the bundle (tsconfig.json "paths"). @actions/core imports
// @actions/http-client for OIDC tokens, and http-client imports undici's ProxyAgent for its
// getAgentDispatcher(), which neither @actions/core nor this action calls. undici was a quarter of
// the bundle and about a hundred modules run at every start-up, so it is left out altogether.
exports.ProxyAgent = class ProxyAgent {
  constructor() {
    throw new Error('undici is not bundled with docker-image-reclaim')
  }
}
