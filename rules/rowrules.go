package rules

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// This file declares and decodes the per-destination row rules: consent
// withdrawals (promise 8) and the exclusion of children (promise 9). Unlike
// retention and erasure, which remove rows from every destination, these
// remove a row from some destinations only.

// PartnerSharing is the purpose of destinations outside the platform, from
// which the children rule also removes rows whose age cannot be told.
const PartnerSharing = "partner_sharing"

// Consent histories: which of a subject's rows a withdrawal excludes.
const (
	// HistoryAll excludes every row of the subject from the purpose.
	HistoryAll = "all"
	// HistoryFromWithdrawal excludes the rows at or after the withdrawal.
	HistoryFromWithdrawal = "from_withdrawal"
)

// ConsentDecl is one list of consent withdrawals. The list (Parquet or CSV)
// has a subject column, a purpose column naming one of Purposes, and a
// withdrawn_at column (a timestamp, or RFC 3339 text in CSV).
type ConsentDecl struct {
	// List is the path of the Parquet or CSV file.
	List string
	// Column is the list's subject column; by default the dataset's subject.
	Column string
	// History is HistoryAll (the default) or HistoryFromWithdrawal.
	History string
	// TimeColumn is the dataset's event time, needed for
	// HistoryFromWithdrawal; by default the retention rule's time column.
	TimeColumn string
	Pos        Pos
}

// Format returns the list's file format: "parquet" or "csv".
func (c *ConsentDecl) Format() string { return listFormat(c.List) }

// ChildrenDecl excludes the rows of children from some destinations: rows
// whose subject was younger than Below full years at the event (or at most
// Below with Inclusive). A row whose age cannot be told is counted, and kept,
// except from partner_sharing destinations, which it leaves unless
// UnknownAgeKeep says why it may stay (doubt protects the child: a partner
// outside the platform is where a child's row does most harm).
type ChildrenDecl struct {
	// Below is the age threshold in full years (default 14, PIPL's 不满十四周岁).
	Below int
	// Inclusive also counts subjects aged exactly Below as children
	// ("14岁以下（含）").
	Inclusive bool
	// TimeColumn is the event time the age is measured at; by default the
	// retention rule's time column. Without either, age is measured at the
	// run's now.
	TimeColumn string
	// Destinations names the destinations the rows are kept from; empty
	// means every destination that receives the dataset.
	Destinations []string
	// BirthDate or ResidentID names the column the age comes from (a date or
	// timestamp; an 18-character resident ID whose digits 7-14 are the birth
	// date). With FromDataset the column is that dataset's, joined on the
	// subject columns; otherwise this dataset's.
	BirthDate, ResidentID string
	// FromDataset names another dataset holding the subjects' birth dates.
	FromDataset string
	// UnknownAgeKeep, when set (unknown_age: {keep: "reason"}), is why rows
	// whose age cannot be told may go to the rule's partner_sharing
	// destinations; the run warns and the report records it.
	UnknownAgeKeep string
	// UnknownAgePos locates unknown_age, for errors and the warning.
	UnknownAgePos Pos
	Pos           Pos
	// destinationNodes locate the Destinations entries for errors.
	destinationNodes []*yaml.Node
}

// AgeColumn returns the column the age comes from.
func (c *ChildrenDecl) AgeColumn() string { return c.BirthDate + c.ResidentID }

// RemovesUnknown reports whether rows whose age cannot be told leave a
// destination of purpose the rule excludes children from: partner_sharing
// ones, unless the policy says why they may stay.
func (c *ChildrenDecl) RemovesUnknown(purpose string) bool {
	return purpose == PartnerSharing && c.UnknownAgeKeep == ""
}

// Excludes reports whether the rule keeps the dataset's children out of
// destination name.
func (c *ChildrenDecl) Excludes(name string) bool {
	if len(c.Destinations) == 0 {
		return true
	}
	for _, d := range c.Destinations {
		if d == name {
			return true
		}
	}
	return false
}

// defaultTimeColumn is the retention rule's time column, or "".
func defaultTimeColumn(ds *DatasetDecl) string {
	if ds.Retention != nil {
		return ds.Retention.TimeColumn
	}
	return ""
}

func (d *decoder) consent(n *yaml.Node, path string, ds *DatasetDecl, baseDir string) []*ConsentDecl {
	n = resolve(n)
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, path, "must be a list of consent withdrawal lists, got %s", kindName(n))
		return nil
	}
	if ds.Subject == "" {
		d.errorf(n, path, "consent needs the dataset's subject column: add subject: <column>")
	}
	var out []*ConsentDecl
	for i, item := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		c := &ConsentDecl{Pos: d.pos(resolve(item)), Column: ds.Subject, History: HistoryAll, TimeColumn: defaultTimeColumn(ds)}
		var listNode, timeNode *yaml.Node
		d.mapping(item, p,
			field{"list", true, func(n *yaml.Node, path string) { listNode, c.List = resolve(n), resolvePath(baseDir, d.str(n, path)) }},
			field{"column", false, func(n *yaml.Node, path string) { c.Column = d.str(n, path) }},
			field{"history", false, func(n *yaml.Node, path string) { c.History = d.enum(n, path, HistoryAll, HistoryFromWithdrawal) }},
			field{"time_column", false, func(n *yaml.Node, path string) { timeNode, c.TimeColumn = resolve(n), d.str(n, path) }},
		)
		if c.List != "" && listFormat(c.List) == "" {
			d.errorf(listNode, join(p, "list"), "%q: consent lists are .parquet or .csv files", c.List)
		}
		if timeNode != nil && c.TimeColumn != "" && len(ds.Columns) > 0 && ds.Column(c.TimeColumn) == nil {
			d.errorf(timeNode, join(p, "time_column"), "time column %q is not among the dataset's columns", c.TimeColumn)
		}
		if c.History == HistoryFromWithdrawal && c.TimeColumn == "" {
			d.errorf(resolve(item), p, "history: %s needs the event time: add time_column: <column> (or a retention rule)", HistoryFromWithdrawal)
		}
		out = append(out, c)
	}
	return out
}

func (d *decoder) children(n *yaml.Node, path string, ds *DatasetDecl) *ChildrenDecl {
	c := &ChildrenDecl{Pos: d.pos(resolve(n)), Below: 14, TimeColumn: defaultTimeColumn(ds)}
	var timeNode, ageNode *yaml.Node
	d.mapping(n, path,
		field{"below", false, func(n *yaml.Node, path string) {
			if v, ok := d.integer(n, path); ok {
				if v < 1 || v > 30 {
					d.errorf(resolve(n), path, "%d: the age threshold is in full years, 1 to 30", v)
				}
				c.Below = int(v)
			}
		}},
		field{"inclusive", false, func(n *yaml.Node, path string) { c.Inclusive, _ = d.boolean(n, path) }},
		field{"time_column", false, func(n *yaml.Node, path string) { timeNode, c.TimeColumn = resolve(n), d.str(n, path) }},
		field{"destinations", false, func(n *yaml.Node, path string) {
			c.Destinations, _ = d.stringList(n, path)
			if rn := resolve(n); rn.Kind == yaml.SequenceNode {
				c.destinationNodes = rn.Content
			}
		}},
		field{"unknown_age", false, func(n *yaml.Node, path string) {
			rn := resolve(n)
			c.UnknownAgePos = d.pos(rn)
			if rn.Kind != yaml.MappingNode {
				d.errorf(rn, path, "must be a mapping, unknown_age: {keep: \"why rows of unknown age may go to partners\"}, got %s", kindName(rn))
				return
			}
			d.mapping(n, path, field{"keep", true, func(n *yaml.Node, path string) {
				c.UnknownAgeKeep = strings.TrimSpace(d.str(n, path)) // an empty reason is an error of str
			}})
		}},
		field{"age_from", true, func(n *yaml.Node, path string) {
			ageNode = resolve(n)
			d.mapping(n, path,
				field{"birth_date", false, func(n *yaml.Node, path string) { c.BirthDate = d.str(n, path) }},
				field{"resident_id", false, func(n *yaml.Node, path string) { c.ResidentID = d.str(n, path) }},
				field{"dataset", false, func(n *yaml.Node, path string) { c.FromDataset = d.name(n, path) }},
			)
		}},
	)
	if ageNode != nil && ageNode.Kind == yaml.MappingNode && (c.BirthDate == "") == (c.ResidentID == "") {
		d.errorf(ageNode, join(path, "age_from"), "name exactly one of birth_date: <column> or resident_id: <column>")
	}
	if c.FromDataset == "" && (c.BirthDate == "") != (c.ResidentID == "") && len(ds.Columns) > 0 && ds.Column(c.AgeColumn()) == nil {
		d.errorf(ageNode, join(path, "age_from"), "column %q is not among the dataset's columns", c.AgeColumn())
	}
	if c.FromDataset != "" && ds.Subject == "" {
		d.errorf(ageNode, join(path, "age_from.dataset"), "taking ages from another dataset joins on subjects: add subject: <column> to dataset %q", ds.Name)
	}
	if timeNode != nil && c.TimeColumn != "" && len(ds.Columns) > 0 && ds.Column(c.TimeColumn) == nil {
		d.errorf(timeNode, join(path, "time_column"), "time column %q is not among the dataset's columns", c.TimeColumn)
	}
	return c
}

// checkChildrenRefs checks what a children rule names outside its dataset:
// the dataset ages come from and the destinations it excludes from.
func (d *decoder) checkChildrenRefs(p *Policy) {
	for _, ds := range p.Datasets {
		c := ds.Children
		if c == nil {
			continue
		}
		path := "datasets." + ds.Name + ".children"
		if c.FromDataset != "" {
			from := p.Dataset(c.FromDataset)
			switch {
			case from == nil:
				d.errors(c.Pos, join(path, "age_from.dataset"), "no dataset named %q in datasets", c.FromDataset)
			case from.Subject == "":
				d.errors(c.Pos, join(path, "age_from.dataset"), "dataset %q has no subject column to join on: add subject: <column> to it", from.Name)
			case from.Column(c.AgeColumn()) == nil:
				d.errors(c.Pos, join(path, "age_from"), "column %q is not among the columns of dataset %q", c.AgeColumn(), from.Name)
			}
		}
		if c.UnknownAgeKeep != "" {
			// like allow on a treatment that meets its floor: a stale
			// exception does not linger
			partner := false
			for _, dst := range p.Destinations {
				for _, b := range dst.Datasets {
					partner = partner || b.Dataset == ds.Name && dst.Purpose == PartnerSharing && c.Excludes(dst.Name)
				}
			}
			if !partner {
				d.errors(c.UnknownAgePos, join(path, "unknown_age"), "rows of unknown age are removed only from partner_sharing destinations, and this rule excludes children from none: remove unknown_age")
			}
		}
		for i, name := range c.Destinations {
			found := false
			for _, dst := range p.Destinations {
				found = found || dst.Name == name
			}
			if !found && i < len(c.destinationNodes) {
				var names []string
				for _, dst := range p.Destinations {
					names = append(names, dst.Name)
				}
				d.errorf(c.destinationNodes[i], fmt.Sprintf("%s.destinations[%d]", path, i), "no destination named %q (declared: %s)", name, strings.Join(names, ", "))
			}
		}
	}
}
