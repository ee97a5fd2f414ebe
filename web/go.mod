module github.com/bulwarkgw/bulwark/web

go 1.26
