package rules

import (
	"fmt"
	"strings"

	"github.com/robfig/cron/v3"
	"go.yaml.in/yaml/v3"
)

// What a job runs.
const (
	// JobDeidentify de-identifies and publishes the job's destinations.
	JobDeidentify = "deidentify"
	// JobRetain applies retention and erasure to published outputs.
	JobRetain = "retain"
	// JobBoth runs retain, then deidentify.
	JobBoth = "both"
)

// JobKinds lists what a job may run, in the order `both` runs them.
var JobKinds = []string{JobDeidentify, JobRetain, JobBoth}

// JobDecl is a scheduled job declared in the policy's jobs: list.
type JobDecl struct {
	// Name identifies the job (`deid run --job NAME`, metrics, locks).
	Name string
	Pos  Pos
	// What is JobDeidentify, JobRetain or JobBoth.
	What string
	// Destinations the job runs; empty means every destination.
	Destinations []string
	// Schedule is the cron expression as written, with an optional
	// CRON_TZ=Zone prefix; ParseSchedule accepted it.
	Schedule    string
	SchedulePos Pos
}

// scheduleParser accepts five fields (minute first) or six (seconds first),
// and descriptors such as @daily and @every 1h. CRON_TZ= and TZ= prefixes
// choose the time zone; without one the scheduler's zone (UTC for deid
// serve) applies.
var scheduleParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSchedule parses a job's cron schedule as the policy language does.
func ParseSchedule(spec string) (s cron.Schedule, err error) {
	// robfig/cron v3.0.1 panics on a zone prefix with nothing after it
	// ("TZ=", found by FuzzParseSchedule); other panics are caught too
	for _, prefix := range []string{"TZ=", "CRON_TZ="} {
		if rest, ok := strings.CutPrefix(spec, prefix); ok && !strings.Contains(rest, " ") {
			return nil, fmt.Errorf("%s%s: the zone must be followed by a space and the schedule", prefix, rest)
		}
	}
	defer func() {
		if p := recover(); p != nil {
			s, err = nil, fmt.Errorf("cannot parse the schedule (%v)", p)
		}
	}()
	return scheduleParser.Parse(spec)
}

// Job returns the job called name, or nil.
func (p *Policy) Job(name string) *JobDecl {
	for _, j := range p.Jobs {
		if j.Name == name {
			return j
		}
	}
	return nil
}

// jobs decodes the jobs: list into p.Jobs (after destinations, which jobs name).
func (d *decoder) jobs(n *yaml.Node, path string, p *Policy) {
	n = resolve(n)
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, path, "must be a list of jobs (- name: ..., what: ..., schedule: ...), got %s", kindName(n))
		return
	}
	for i, item := range n.Content {
		jp := fmt.Sprintf("%s[%d]", path, i)
		j := &JobDecl{Pos: d.pos(resolve(item))}
		var nameNode *yaml.Node
		d.mapping(item, jp,
			field{"name", true, func(n *yaml.Node, path string) { nameNode, j.Name = resolve(n), d.name(n, path) }},
			field{"what", true, func(n *yaml.Node, path string) { j.What = d.enum(n, path, JobKinds...) }},
			field{"destinations", false, func(n *yaml.Node, path string) {
				names, ok := d.stringList(n, path)
				if !ok {
					return
				}
				for k, name := range names {
					if p.destination(name) == nil {
						d.errorf(resolve(resolve(n).Content[k]), fmt.Sprintf("%s[%d]", path, k), "no destination named %q%s", name, p.destinationHint())
					}
				}
				j.Destinations = names
			}},
			field{"schedule", true, func(n *yaml.Node, path string) {
				j.SchedulePos = d.pos(resolve(n))
				s := d.str(n, path)
				if strings.TrimSpace(s) == "" {
					return
				}
				if _, err := ParseSchedule(s); err != nil {
					d.errorf(resolve(n), path, "schedule %q: %v (write five fields, minute hour day-of-month month day-of-week, or six with seconds first, or @daily, @every 1h; a zone as CRON_TZ=Asia/Shanghai 0 3 * * *)", s, err)
					return
				}
				j.Schedule = s
			}},
		)
		if j.Name != "" {
			if prev := p.Job(j.Name); prev != nil {
				d.errorf(nameNode, join(jp, "name"), "job %q is already declared at line %d", j.Name, prev.Pos.Line)
			}
		}
		p.Jobs = append(p.Jobs, j)
	}
}

func (p *Policy) destination(name string) *DestinationDecl {
	for _, d := range p.Destinations {
		if d.Name == name {
			return d
		}
	}
	return nil
}

func (p *Policy) destinationHint() string {
	names := make([]string, len(p.Destinations))
	for i, d := range p.Destinations {
		names[i] = d.Name
	}
	return " (declared: " + strings.Join(names, ", ") + ")"
}
