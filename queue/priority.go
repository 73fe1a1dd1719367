package queue

import (
	"context"
	"fmt"
)

// SetPriority gives the record of id owned by uid a new priority (higher is more urgent, within
// [-1000, 1000]); a waiting job moves to its new place in line. It reports whether the record
// changed.
func (q *Queue) SetPriority(ctx context.Context, id, uid string, priority int) (bool, error) {
	if priority < -1000 || priority > 1000 {
		return false, fmt.Errorf("set priority of %s: %d is outside [-1000, 1000]", id, priority)
	}
	k := q.keys
	changed, err := scriptPriority.Run(ctx, q.c.rdb, []string{k.job(id), k.wait}, id, uid, priority).Int()
	return changed == 1, stateErr("set priority of", id, err)
}
