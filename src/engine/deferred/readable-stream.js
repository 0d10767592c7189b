// Stands in for readable-stream in the bundle (tsconfig.json "paths"). docker-modem's duplex
// stream for hijacked connections (exec and attach, which this action never opens) and tar-fs's
// packers take their stream classes from it; readable-stream 3 is a copy of Node's own stream
// module, which serves them as well and adds nothing more to compile at every start.
module.exports = require('node:stream')
