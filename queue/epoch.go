package queue

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// Epoch returns the queue's epoch: a random mark the queue's meta hash keeps from the first call
// on. Redis forgets it only when it loses the queue's keys (FLUSHALL, a restart without
// persistence, a failover to an empty replica), so a caller that sees it change, or sees it made
// anew (isNew), knows every record of the queue may be gone.
func (q *Queue) Epoch(ctx context.Context) (epoch string, isNew bool, err error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", false, fmt.Errorf("epoch of %s: %w", q.Name, err)
	}
	pipe := q.c.rdb.TxPipeline()
	set := pipe.HSetNX(ctx, q.keys.meta, "epoch", hex.EncodeToString(b[:]))
	get := pipe.HGet(ctx, q.keys.meta, "epoch")
	if _, err := pipe.Exec(ctx); err != nil {
		return "", false, fmt.Errorf("epoch of %s: %w", q.Name, err)
	}
	return get.Val(), set.Val(), nil
}
