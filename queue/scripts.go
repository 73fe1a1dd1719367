package queue

import (
	"embed"
	"fmt"

	"github.com/redis/go-redis/v9"
)

//go:embed lua/*.lua
var luaFiles embed.FS

// Every script is the stats buckets (statsPrelude), the prelude and its own file. redis.Script runs EVALSHA and, on NOSCRIPT
// (a restarted or failed-over Redis), EVAL, which loads it again.
var (
	scriptEnqueue   = loadScript("enqueue")
	scriptLease     = loadScript("lease")
	scriptHeartbeat = loadScript("heartbeat")
	scriptProgress  = loadScript("progress")
	scriptComplete  = loadScript("complete")
	scriptFail      = loadScript("fail")
	scriptRetry     = loadScript("retry")
	scriptCancel    = loadScript("cancel")
	scriptRemove    = loadScript("remove")
	scriptReclaim   = loadScript("reclaim")
	scriptSweep     = loadScript("sweep")
	scriptPause     = loadScript("pause")
	scriptRelease   = loadScript("release")
	scriptRaise     = loadScript("raise")
	scriptPriority  = loadScript("priority")
	scriptPromote   = loadScript("promote")
	scriptCounts    = loadScript("counts")
	scriptStrays    = loadScript("strays")
)

func loadScript(name string) *redis.Script {
	prelude, err := luaFiles.ReadFile("lua/prelude.lua")
	if err != nil {
		panic(fmt.Sprintf("queue: embedded prelude: %v", err))
	}
	body, err := luaFiles.ReadFile("lua/" + name + ".lua")
	if err != nil {
		panic(fmt.Sprintf("queue: embedded script %s: %v", name, err))
	}
	return redis.NewScript(statsPrelude() + string(prelude) + "\n" + string(body))
}
