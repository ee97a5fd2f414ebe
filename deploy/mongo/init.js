// MongoDB initialisation for the docker-compose stack.
//
// The mongo image runs this once, with mongosh, when it starts on an empty
// data directory (mounted at /docker-entrypoint-initdb.d/). It creates the
// events collection and its indexes.
//
// The gateway creates the same indexes at start (EnsureIndexes in
// gateway/internal/events), so a MongoDB this script never ran on works too.
// Keep the two identical: same keys, same names, same options. MongoDB
// refuses to create an index whose keys exist under another name or with
// other options, and the gateway would then log a warning and retry forever.
//
// Events are keyed by their own unique id (_id), so re-sent batches cannot
// create duplicates. The TTL index on ts drops events 30 days (2592000 s,
// the gateway's default mongo.retention of 720h) after their timestamp; it
// also serves newest-first sorts on ts, so no separate { ts: -1 } index.

const bulwark = db.getSiblingDB("bulwark");

if (!bulwark.getCollectionNames().includes("events")) {
  bulwark.createCollection("events");
}

// Time ranges and the live feed (newest first), and the 30-day TTL.
bulwark.events.createIndex({ ts: 1 }, { name: "ts", expireAfterSeconds: 2592000 });
bulwark.events.createIndex({ ip: 1, ts: -1 }, { name: "ip_ts" }); // one client's history
bulwark.events.createIndex({ type: 1, ts: -1 }, { name: "type_ts" }); // one type over time
