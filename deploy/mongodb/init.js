// Initiates rs0 once (a second run finds it initiated and only waits), then
// sets the cluster-wide default write concern, which MongoDB requires
// before a primary-secondary-arbiter set accepts reconfigurations.
try {
  rs.status();
} catch (e) {
  rs.initiate({
    _id: "rs0",
    members: [
      { _id: 0, host: "127.0.0.1:27017", priority: 1 },
      { _id: 1, host: "127.0.0.1:27018", priority: 1 },
      { _id: 2, host: "127.0.0.1:27019", arbiterOnly: true },
    ],
  });
}
for (let i = 0; i < 120 && !db.hello().isWritablePrimary; i++) {
  sleep(500);
}
if (!db.hello().isWritablePrimary) {
  throw new Error("no primary after 60 s");
}
db.adminCommand({ setDefaultRWConcern: 1, defaultWriteConcern: { w: "majority" } });
print("rs0 ready: " + db.hello().primary);
