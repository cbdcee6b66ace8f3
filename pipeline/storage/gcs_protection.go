package storage

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// BucketProtection describes what a bucket does with deleted objects.
type BucketProtection struct {
	// Bucket is the bucket's name.
	Bucket string
	// Versioning: deleted and replaced objects stay as noncurrent versions
	// until the bucket's lifecycle rules remove them.
	Versioning bool
	// SoftDelete is how long deleted objects stay restorable (0: none).
	SoftDelete time.Duration
}

// Retains reports whether deleted data survives a delete.
func (p BucketProtection) Retains() bool { return p.Versioning || p.SoftDelete > 0 }

// Warning says, for a report, what deleting in the bucket does not do; empty
// when deletes remove data.
func (p BucketProtection) Warning() string {
	var what []string
	if p.Versioning {
		what = append(what, "object versioning keeps deleted and replaced objects as noncurrent versions until the bucket's lifecycle rules remove them")
	}
	if p.SoftDelete > 0 {
		what = append(what, fmt.Sprintf("soft delete keeps deleted objects restorable for %s", p.SoftDelete))
	}
	if len(what) == 0 {
		return ""
	}
	return "bucket gs://" + p.Bucket + ": " + strings.Join(what, "; ") +
		": data deid deletes there is not gone until then"
}

// Protection reads a bucket's versioning and soft delete settings.
func (g *GCS) Protection(ctx context.Context, location string) (BucketProtection, error) {
	b, _, err := ParseGS(location)
	if err != nil {
		return BucketProtection{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, g.opt.OpTimeout)
	defer cancel()
	a, err := g.client.Bucket(b).Attrs(ctx)
	if err != nil {
		return BucketProtection{}, gsError("bucket attributes of", "gs://"+b, err)
	}
	p := BucketProtection{Bucket: b, Versioning: a.VersioningEnabled}
	if a.SoftDeletePolicy != nil {
		p.SoftDelete = a.SoftDeletePolicy.RetentionDuration
	}
	return p, nil
}
