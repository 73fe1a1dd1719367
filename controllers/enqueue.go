package controllers

import (
	"encoding/json"
	"fmt"
	"time"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/queue"
)

// PayloadVersion is the schema version of the payload the controller enqueues: the job's spec
// as JSON.
const PayloadVersion = 1

// enqueueRequest builds the Redis job for a CR with its JobQueue's settings.
func enqueueRequest(obj jobsv1alpha1.JobObject, jq *jobsv1alpha1.JobQueue) (queue.EnqueueRequest, error) {
	payload, err := json.Marshal(obj.JobSpec())
	if err != nil {
		return queue.EnqueueRequest{}, fmt.Errorf("encode payload of %s: %w", obj.GetName(), err)
	}
	settings := jq.Spec.Settings()
	timeout := settings.Timeout
	if t := obj.Common().TimeoutSeconds; t != nil {
		timeout = time.Duration(*t) * time.Second
	}
	return queue.EnqueueRequest{
		ID:             obj.GetName(),
		UID:            string(obj.GetUID()),
		Payload:        payload,
		PayloadVersion: PayloadVersion,
		Priority:       int(obj.Common().Priority),
		MaxAttempts:    int(settings.Attempts),
		Backoff: queue.Backoff{
			Type:          queue.BackoffType(settings.Backoff.Type),
			Delay:         settings.Backoff.Delay.Duration,
			Multiplier:    int(settings.Backoff.Multiplier),
			JitterPercent: int(settings.Backoff.JitterPercent),
		},
		Timeout:    timeout,
		MinVersion: obj.JobStatus().QueueVersion,
	}, nil
}
