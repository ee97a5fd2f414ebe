module github.com/bulwarkgw/bulwark/web

go 1.26

// npm's dependencies are not Go packages; keep ./... out of them.
ignore ./node_modules
