// Stands in for @actions/http-client in the bundle (tsconfig.json "paths"). @actions/core imports
// it as it loads, for the OIDC tokens of getIDToken(), which this action never asks for. It would
// bring tunnel and undici's ProxyAgent with it, a large share of a bundle that node compiles at
// every start, so it is left out.
const missing = () => {
  throw new Error('@actions/http-client is not bundled with docker-image-reclaim')
}

export class HttpClient {
  constructor() {
    missing()
  }
}

export class BearerCredentialHandler {
  constructor() {
    missing()
  }
}
