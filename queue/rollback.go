package queue

import "context"

// RaiseVersion lifts the version of the record of id owned by uid above floor, as a transition of
// its own (with its event), and returns the version afterwards. The controller calls it when a
// record's version is below what its CR reflects (Redis restarted from an older snapshot), so the
// CR keeps following the record.
func (q *Queue) RaiseVersion(ctx context.Context, id, uid string, floor int64) (int64, error) {
	k := q.keys
	v, err := scriptRaise.Run(ctx, q.c.rdb, []string{k.job(id), k.events}, id, uid, floor, q.c.eventsMaxLen).Int64()
	return v, stateErr("raise the version of", id, err)
}
