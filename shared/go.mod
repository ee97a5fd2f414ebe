module github.com/bulwarkgw/bulwark/shared

go 1.26
