package workers

import (
	"context"
	"errors"
	"fmt"

	"github.com/jengu/queue-operator/store"
)

// OwnedProperty reads the job's property from db. A property that no longer exists, or that is
// not the job's user's, is a PermanentError: no retry changes either.
func OwnedProperty(ctx context.Context, db *store.Store, propertyID, userID string) (store.Property, error) {
	property, err := db.GetProperty(ctx, propertyID)
	if errors.Is(err, store.ErrNotFound) {
		return store.Property{}, Permanent(fmt.Errorf("property %s no longer exists", propertyID))
	}
	if err != nil {
		return store.Property{}, err
	}
	if property.UserID != userID {
		return store.Property{}, Permanent(fmt.Errorf("property %s does not belong to user %s", propertyID, userID))
	}
	return property, nil
}
