// Stands in for @grpc/grpc-js and @grpc/proto-loader in the bundle (tsconfig.json "paths").
// dockerode requires both as it loads, for the BuildKit sessions of buildImage, which this action
// never calls. With protobufjs they were 1.1 MB of the bundle, which node compiles at every
// start-up even when it runs none of it, so they are left out.
module.exports = new Proxy(
  {},
  {
    get: (_, key) => {
      throw new Error(`gRPC is not bundled with docker-image-reclaim (${String(key)})`)
    }
  }
)
