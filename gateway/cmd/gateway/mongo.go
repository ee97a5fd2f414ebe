package main

import (
	"strconv"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"

	"github.com/bulwarkgw/bulwark/gateway/internal/config"
)

// mongoCollection opens one of the gateway's collections (events, audit)
// with mongo.write_concern; "" leaves the URI's w= or the driver's default
// (w:1 on a replica set's primary).
func mongoCollection(mc *mongo.Client, m config.Mongo, name string) *mongo.Collection {
	opts := options.Collection()
	if wc := writeConcern(m.WriteConcern); wc != nil {
		opts.SetWriteConcern(wc)
	}
	return mc.Database(m.Database).Collection(name, opts)
}

// writeConcern maps mongo.write_concern, which config has validated, to the
// driver's.
func writeConcern(s string) *writeconcern.WriteConcern {
	switch s {
	case "":
		return nil
	case "majority":
		return writeconcern.Majority()
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return nil // refused by config.Load; never reached
	}
	return &writeconcern.WriteConcern{W: n}
}
