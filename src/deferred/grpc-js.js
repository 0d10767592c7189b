// Stands in for @grpc/grpc-js in the bundle (tsconfig.json "paths"). dockerode requires it as it
// loads, for BuildKit sessions that this action never opens; with protobufjs it costs every run
// about 60 ms of CPU at start-up. It is loaded on first use.
module.exports = new Proxy({}, { get: (_, key) => require('@grpc/grpc-js/build/src/index.js')[key] })
