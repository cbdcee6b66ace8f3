package transforms

import (
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/deidproject/deid/transforms/detect"
)

var scrubSpec = &Spec{
	Name: "scrub",
	Summary: "keep free text but replace what the detectors find with typed tokens ([PHONE], [EMAIL], [ID_CARD], ...); " +
		"all detectors scan the original text in one pass, and overlapping matches merge into one token, " +
		"that of the longest match (of equally long ones, the detector listed first)",
	Inputs: []Kind{KindString},
	Params: []ParamSpec{{
		Name: "detectors", Kind: ParamStringList, Enum: detectorNames(), Default: detect.DefaultNames(),
		Doc: "detectors to apply, in priority order; the default is every validating detector, most specific first",
	}},
	Result:  ResultScrubbed,
	Example: "电话138 1234 5678，身份证11010519491231002X，13812345678@163.com → 电话[PHONE]，身份证[ID_CARD]，[EMAIL]",
	New: func(p Params, _ Env) (Transform, error) {
		set, err := detect.LookupSet(p.Strings("detectors"))
		if err != nil {
			return nil, err
		}
		return &scrub{set: set}, nil
	},
	Describe: func(p Params) string {
		return fmt.Sprintf("free text with detected identifiers replaced by tokens (detectors: %s)", strings.Join(p.Strings("detectors"), ", "))
	},
}

func detectorNames() []string {
	var names []string
	for _, in := range detect.All() {
		names = append(names, in.Name)
	}
	return names
}

type scrub struct {
	set *detect.Set
}

func (s *scrub) OutputType(in arrow.DataType) (arrow.DataType, error) {
	if err := checkKind("scrub", in, KindString); err != nil {
		return nil, err
	}
	return arrow.BinaryTypes.String, nil
}

func (s *scrub) Apply(mem memory.Allocator, in arrow.Array) (arrow.Array, error) {
	if _, err := s.OutputType(in.DataType()); err != nil {
		return nil, err
	}
	var buf detect.Buffer // per call: a transform may be applied concurrently
	return mapStrings(mem, in, func(dst, v []byte) ([]byte, bool) {
		return s.set.Scrub(dst, v, &buf), true
	})
}
