// Stands in for @grpc/proto-loader in the bundle, as grpc-js.js does for @grpc/grpc-js.
module.exports = new Proxy({}, { get: (_, key) => require('@grpc/proto-loader/build/src/index.js')[key] })
