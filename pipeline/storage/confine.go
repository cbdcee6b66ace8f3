package storage

import (
	"path"
	"path/filepath"
	"strings"
)

// Within reports whether location loc lies inside the folder root (or is
// root itself), compared after cleaning both: a local path relative to the
// local root by filepath.Rel must be filepath.IsLocal; a URI must have
// root's scheme and bucket and lie under its prefix. A location with a NUL
// byte, or of another kind than root (a URI under a local root), is never
// within it; a relative local path is taken from the working folder. It reads no store: a
// link below root is the store's to refuse (see NoLinks).
func Within(root, loc string) bool {
	if root == "" || loc == "" || strings.ContainsRune(root, 0) || strings.ContainsRune(loc, 0) {
		return false
	}
	if IsURI(root) || IsURI(loc) {
		if !IsURI(root) || !IsURI(loc) {
			return false
		}
		rs, rrest, _ := strings.Cut(root, "://")
		ls, lrest, _ := strings.Cut(loc, "://")
		rb, rp, _ := strings.Cut(rrest, "/")
		lb, lp, _ := strings.Cut(lrest, "/")
		if rs != ls || rb != lb || rb == "" {
			return false
		}
		rel, err := filepath.Rel(path.Clean("/"+rp), path.Clean("/"+lp))
		return err == nil && filepath.IsLocal(rel)
	}
	if filepath.IsAbs(root) != filepath.IsAbs(loc) {
		// one is relative to the working folder: compare both absolute
		var err1, err2 error
		root, err1 = filepath.Abs(root)
		loc, err2 = filepath.Abs(loc)
		if err1 != nil || err2 != nil {
			return false
		}
	}
	rel, err := filepath.Rel(filepath.Clean(root), filepath.Clean(loc))
	return err == nil && filepath.IsLocal(rel)
}

// MatchPattern reports whether location loc is one that Glob(pattern)
// would list: inside the pattern's fixed prefix, with the rest matching the
// pattern's segments (a pattern without glob characters matches only its
// own location, cleaned). It reads no store, so it also answers for a file
// that is gone.
func MatchPattern(pattern, loc string) bool {
	if !HasMeta(pattern) {
		return Within(pattern, loc) && Within(loc, pattern)
	}
	prefix, rest := splitFixed(pattern)
	if !Within(prefix, loc) {
		return false
	}
	root := prefix
	if !IsURI(prefix) {
		root, loc = filepath.Clean(prefix), filepath.Clean(loc)
	}
	rel, err := Rel(root, loc)
	if err != nil {
		return false
	}
	if IsURI(root) {
		rel = path.Clean(rel)
	}
	return matchSegments(strings.Split(rest, "/"), strings.Split(rel, "/"))
}
