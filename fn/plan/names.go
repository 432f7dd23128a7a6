package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/go-json-experiment/json"
)

// MaxNameLength is the longest name a composed object may have. Cluster API
// copies MachineDeployment names into label values, which are limited to 63
// characters, so every name stays within that.
const MaxNameLength = 63

// hashLength is the number of hex characters of a content hash used in names.
const hashLength = 8

// Name joins parts with dashes into a valid DNS-1123 label of at most
// MaxNameLength characters. A longer name is cut and given a suffix hashed
// from the whole name, so distinct long names stay distinct and the same
// parts always give the same name.
func Name(parts ...string) string {
	return shorten(strings.Join(nonEmpty(parts), "-"), MaxNameLength)
}

// HashedName is Name(parts...) with the hash appended, shortening the parts
// so that the hash always survives.
func HashedName(hash string, parts ...string) string {
	return shorten(strings.Join(nonEmpty(parts), "-"), MaxNameLength-len(hash)-1) + "-" + hash
}

func nonEmpty(parts []string) []string {
	out := make([]string, 0, len(parts))
	for _, p := range parts {
		if p = sanitize(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// sanitize lower-cases s and replaces every character that is not allowed in
// a DNS-1123 label with a dash, trimming dashes at either end.
func sanitize(s string) string {
	b := []byte(strings.ToLower(s))
	for i, c := range b {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			b[i] = '-'
		}
	}
	return strings.Trim(string(b), "-")
}

func shorten(s string, max int) string {
	if len(s) <= max {
		return s
	}
	h := Hash([]byte(s))
	return strings.TrimRight(s[:max-len(h)-1], "-") + "-" + h
}

// Hash is the short content hash used in names: the first eight hex
// characters of the SHA-256 of b.
func Hash(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:hashLength/2])
}

// legacyHash is the content hash template names were minted from before
// they hashed the wire encoding: JSON v2's own encoding of the typed object,
// which omits non-nil pointers to empty values (a spot pool's
// spotMarketOptions: {}, an optional string set to ""). It is kept only to
// recognise those names on running pools, which keep them while their
// content is the same (legacyName). A future change of the encoding adds
// the encoding it replaces here, the same way.
func legacyHash(v any) (string, error) {
	b, err := json.Marshal(v, json.Deterministic(true))
	if err != nil {
		return "", err
	}
	return Hash(b), nil
}
