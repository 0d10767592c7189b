// Stands in for @grpc/grpc-js, @grpc/proto-loader and protobufjs in the bundle (tsconfig.json
// "paths"). dockerode requires the first two as it loads, for the BuildKit sessions of buildImage,
// and protobufjs for BuildKit's progress messages (followProgress): this action calls neither.
// They are large, and node compiles the whole bundle at every start even when it runs none of
// it, so they are left out.
module.exports = new Proxy(
  {},
  {
    get: (_, key) => {
      throw new Error(`gRPC is not bundled with docker-image-reclaim (${String(key)})`)
    }
  }
)
