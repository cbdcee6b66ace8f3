// Package sampledata generates the sample lake in testdata/lake: small,
// deterministic tables of the three log families the privacy policies name
// (device logs, service logs, orders) with realistic fake Chinese personal
// data (valid resident ID check characters and birth dates, Luhn-valid bank
// cards and IMEIs, real mobile prefixes), plus an erasure list and a consent
// withdrawal list. The example policy deploy/examples/policy.yaml runs on
// it, and the end-to-end golden test reads its outputs.
//
// The same seed gives the same bytes; a test regenerates the lake and
// compares it with the committed files. Rebuild with
//
//	go run ./cmd/deid-sample -out testdata/lake
package sampledata

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/deidproject/deid/transforms/detect/fake"
)

// Now is the instant the sample is generated for: the example policy is
// run with --now set to it.
var Now = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// Users is the number of account holders in the sample.
const Users = 120

// File is one generated file: its path relative to the lake and its bytes.
type File struct {
	Path string
	Data []byte
}

// user is one account holder and what the platform knows of them.
type user struct {
	id         int64
	name       string
	phone      string
	email      string
	birth      time.Time
	residentID string
	address    string
	bankCard   string
	imei       string
	mac        string
	oaid       string
	androidID  string
	imsi       string
	iccid      string
	model      string
	os         string
	ip         string
}

// Generate returns the sample lake's files, in a fixed order.
func Generate(seed uint64) ([]File, error) {
	g := fake.New(seed)
	r := rand.New(rand.NewPCG(seed, 7))
	users := make([]*user, Users)
	for i := range users {
		u := &user{id: int64(10001 + i)}
		u.birth = g.Date(time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2004, 12, 31, 0, 0, 0, 0, time.UTC))
		if i%10 == 3 { // one in ten is a child: born 2013-2016, under 14 in 2026
			u.birth = g.Date(time.Date(2013, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2016, 12, 31, 0, 0, 0, 0, time.UTC))
		}
		u.name, u.phone, u.email = g.Name(), g.Phone(), g.Email()
		u.residentID = g.ResidentID(u.birth, fake.Sex(1+i%2))
		u.address, u.bankCard, u.imei, u.mac = g.Address(), g.BankCard(), g.IMEI(), g.MAC()
		u.oaid = uuidLike(r)
		u.androidID = fmt.Sprintf("%016x", r.Uint64())
		u.imsi = fmt.Sprintf("46000%010d", r.Int64N(1e10))
		u.iccid = fmt.Sprintf("898600%014d", r.Int64N(1e14))
		u.model = models[r.IntN(len(models))]
		u.os = oses[r.IntN(len(oses))]
		u.ip = g.IPv4()
		if i%7 == 0 {
			u.ip = g.IPv6()
		}
		users[i] = u
	}
	var files []File
	add := func(path string, rec arrow.RecordBatch, err error) error {
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		defer rec.Release()
		b, err := writeParquet(rec)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		files = append(files, File{Path: path, Data: b})
		return nil
	}
	for _, day := range []string{"2026-10-30", "2026-10-31"} {
		rec, err := deviceLogs(g, r, users, day)
		if err := add("device/dt="+day+"/part-0.parquet", rec, err); err != nil {
			return nil, err
		}
		rec, err = serviceLogs(g, r, users, day)
		if err := add("service/dt="+day+"/part-0.parquet", rec, err); err != nil {
			return nil, err
		}
	}
	rec, err := orders(g, r, users)
	if err := add("orders/orders.parquet", rec, err); err != nil {
		return nil, err
	}
	// account cancellations (erasure) and consent withdrawals
	var erasure, consent strings.Builder
	erasure.WriteString("user_id,requested_at\n")
	for _, i := range []int{5, 41, 77} {
		fmt.Fprintf(&erasure, "%d,2026-10-2%dT09:00:00+08:00\n", users[i].id, i%10)
	}
	consent.WriteString("user_id,purpose,withdrawn_at\n")
	fmt.Fprintf(&consent, "%d,partner_sharing,2026-09-01T12:00:00+08:00\n", users[8].id)  // turned off personalised ads
	fmt.Fprintf(&consent, "%d,partner_sharing,2026-10-15T08:30:00+08:00\n", users[19].id) // turned off personalised ads
	fmt.Fprintf(&consent, "%d,research,2026-01-01T00:00:00+08:00\n", users[27].id)
	files = append(files, File{Path: "erasure.csv", Data: []byte(erasure.String())},
		File{Path: "consent.csv", Data: []byte(consent.String())})
	// one SAMPLE-ONLY key per destination of the example policy, and its
	// audit key (which signs reports): public, in the repository, protecting
	// nothing
	for _, name := range []string{"training", "analytics", "partner_ads", "research", "audit"} {
		files = append(files, File{Path: "keys/" + name + ".key", Data: []byte(fmt.Sprintf("%016x%016x%016x%016x\n", r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64()))})
	}
	return files, nil
}

var (
	models = []string{"HUAWEI Mate 60 Pro", "Xiaomi 14", "iPhone15,2", "OPPO Find X7", "vivo X100", "HONOR Magic6"}
	oses   = []string{"HarmonyOS 4.2", "Android 14", "iOS 17.5.1", "Android 13", "iOS 18.1"}
	cities = []string{"杭州", "北京", "上海", "深圳", "成都", "广州", "武汉"}
	agents = []string{
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 AliApp(TB/10.39.0)",
		"Mozilla/5.0 (Linux; Android 14; 23127PN0CC) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/118.0 Mobile Safari/537.36",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
	}
	actions = []string{"view", "click", "search", "cart", "favourite"}
	queries = []string{"羽绒服 女", "华为手机壳", "儿童保温杯", "机械键盘", "茶叶 龙井", "跑步鞋 男"}
	notes   = []string{"请尽快发货", "不要放驿站", "周末送货", "发票抬头写公司", "礼物，请不要放价格单"}
)

func uuidLike(r *rand.Rand) string {
	a, b := r.Uint64(), r.Uint64()
	return fmt.Sprintf("%08X-%04X-%04X-%04X-%012X", a>>32, a>>16&0xffff, a&0xffff, b>>48, b&0xffffffffffff)
}

// eventTime returns a time on day, or for one row in eight a time up to
// five years back (late-arriving and replayed events, for retention).
func eventTime(r *rand.Rand, day string, i int) time.Time {
	d, _ := time.Parse("2006-01-02", day)
	t := d.Add(time.Duration(r.Int64N(86400)) * time.Second).Add(-8 * time.Hour) // the day in Beijing time
	if i%8 == 5 {
		t = t.AddDate(0, 0, -r.IntN(5*365))
	}
	return t
}

var tsType = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}

func deviceLogs(g *fake.Gen, r *rand.Rand, users []*user, day string) (arrow.RecordBatch, error) {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "event_id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "user_id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "event_time", Type: tsType, Nullable: true},
		{Name: "imei", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "mac", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "oaid", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "android_id", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "imsi", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "iccid", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "device_model", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "os_version", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "ip", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "wifi_bssid", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "cell_id", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "latitude", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "longitude", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	base := int64(1_000_000)
	if day == "2026-10-31" {
		base = 2_000_000
	}
	for i := 0; i < 300; i++ {
		u := users[r.IntN(len(users))]
		b.Field(0).(*array.Int64Builder).Append(base + int64(i))
		appendInt(b.Field(1), u.id, i%97 == 13) // a few anonymous events
		appendTime(b.Field(2), eventTime(r, day, i), i%101 == 17)
		for f, v := range []string{u.imei, u.mac, u.oaid, u.androidID, u.imsi, u.iccid, u.model, u.os, u.ip, g.MAC(),
			fmt.Sprintf("460-00-%d-%d", 10000+r.IntN(50000), r.IntN(65536))} {
			appendString(b.Field(3+f), v, i%53 == f) // an occasional NULL
		}
		lat, lon := 22+r.Float64()*18, 102+r.Float64()*20
		appendFloat(b.Field(14), lat, i%61 == 7)
		appendFloat(b.Field(15), lon, i%61 == 7)
	}
	return b.NewRecordBatch(), nil
}

func serviceLogs(g *fake.Gen, r *rand.Rand, users []*user, day string) (arrow.RecordBatch, error) {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "event_id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "user_id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "event_time", Type: tsType, Nullable: true},
		{Name: "ip", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "user_agent", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "url", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "search_query", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "action", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "item_title", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "city", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	base := int64(3_000_000)
	if day == "2026-10-31" {
		base = 4_000_000
	}
	for i := 0; i < 400; i++ {
		u := users[r.IntN(len(users))]
		b.Field(0).(*array.Int64Builder).Append(base + int64(i))
		appendInt(b.Field(1), u.id, i%89 == 11)
		appendTime(b.Field(2), eventTime(r, day, i), false)
		appendString(b.Field(3), u.ip, false)
		appendString(b.Field(4), agents[r.IntN(len(agents))], false)
		item := 600000000000 + r.Int64N(1e10)
		url := fmt.Sprintf("https://item.taobao.com/item.htm?id=%d&spm=a21n57.1.0.0&uid=%d", item, u.id)
		if i%9 == 4 {
			url = fmt.Sprintf("https://s.taobao.com/search?q=%s&phone=%s", "手机", u.phone)
		}
		appendString(b.Field(5), url, i%71 == 3)
		query := queries[r.IntN(len(queries))]
		if i%5 == 2 { // people paste identifiers into search boxes and chats
			query = g.AnySentence().Text
		}
		appendString(b.Field(6), query, i%4 == 1)
		appendString(b.Field(7), actions[r.IntN(len(actions))], false)
		appendString(b.Field(8), "【官方正品】"+queries[r.IntN(len(queries))]+" 包邮", false)
		appendString(b.Field(9), cities[r.IntN(len(cities))], false)
	}
	return b.NewRecordBatch(), nil
}

func orders(g *fake.Gen, r *rand.Rand, users []*user) (arrow.RecordBatch, error) {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "order_id", Type: arrow.BinaryTypes.String},
		{Name: "user_id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "created_at", Type: tsType},
		{Name: "completed_at", Type: tsType, Nullable: true},
		{Name: "receiver_name", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "receiver_phone", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "receiver_address", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "resident_id", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "birth_date", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
		{Name: "invoice_title", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "taxpayer_id", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "invoice_email", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "bank_card", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "amount", Type: arrow.PrimitiveTypes.Float64},
		{Name: "item_title", Type: arrow.BinaryTypes.String},
		{Name: "buyer_note", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for i := 0; i < 360; i++ {
		u := users[i%len(users)]
		// orders over six years: completed ones older than three years
		// after completion are past retention
		created := Now.Add(-time.Duration(r.Int64N(6*365*86400)) * time.Second)
		b.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("%d%06d", 3900000000000+int64(i)*7919, r.IntN(1e6)))
		b.Field(1).(*array.Int64Builder).Append(u.id)
		appendTime(b.Field(2), created, false)
		completed := created.Add(time.Duration(2+r.IntN(10)) * 24 * time.Hour)
		appendTime(b.Field(3), completed, i%13 == 6 || completed.After(Now)) // open orders
		appendString(b.Field(4), u.name, false)
		appendString(b.Field(5), u.phone, false)
		appendString(b.Field(6), u.address, false)
		appendString(b.Field(7), u.residentID, i%3 != 0) // cross-border orders carry the ID
		b.Field(8).(*array.Date32Builder).Append(arrow.Date32FromTime(u.birth))
		company := i%4 == 1
		title := u.name
		if company {
			title = "杭州星河商贸有限公司"
		}
		appendString(b.Field(9), title, i%2 == 0)
		appendString(b.Field(10), g.USCC(), !company || i%2 == 0)
		appendString(b.Field(11), u.email, i%2 == 0)
		appendString(b.Field(12), u.bankCard, i%5 == 0)
		b.Field(13).(*array.Float64Builder).Append(float64(r.IntN(200000)) / 100)
		b.Field(14).(*array.StringBuilder).Append("【官方正品】" + queries[r.IntN(len(queries))])
		note := notes[r.IntN(len(notes))]
		if i%3 == 1 {
			note = g.AnySentence().Text
		}
		appendString(b.Field(15), note, i%6 == 0)
	}
	return b.NewRecordBatch(), nil
}

func appendString(f array.Builder, v string, null bool) {
	if null {
		f.AppendNull()
		return
	}
	f.(*array.StringBuilder).Append(v)
}

func appendInt(f array.Builder, v int64, null bool) {
	if null {
		f.AppendNull()
		return
	}
	f.(*array.Int64Builder).Append(v)
}

func appendFloat(f array.Builder, v float64, null bool) {
	if null {
		f.AppendNull()
		return
	}
	f.(*array.Float64Builder).Append(v)
}

func appendTime(f array.Builder, t time.Time, null bool) {
	if null {
		f.AppendNull()
		return
	}
	f.(*array.TimestampBuilder).Append(arrow.Timestamp(t.UnixMicro()))
}

// writeParquet encodes rec as one Parquet file with zstd and page CRCs.
func writeParquet(rec arrow.RecordBatch) ([]byte, error) {
	var buf bytes.Buffer
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd), parquet.WithDataPageVersion(parquet.DataPageV1),
		parquet.WithCreatedBy("deid sampledata"))
	w, err := pqarrow.NewFileWriter(rec.Schema(), &buf, props, pqarrow.DefaultWriterProps())
	if err != nil {
		return nil, err
	}
	if err := w.Write(rec); err != nil {
		w.Close()
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Seed is the seed of the committed sample lake.
const Seed = 20261101

// Write writes files under dir, creating folders as needed. Key files are
// written readable by their owner only, as deid wants key files (the example
// policies still say why they accept the checked-in copies, which git makes
// 0644).
func Write(dir string, files []File) error {
	for _, f := range files {
		path := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(f.Path, ".key") {
			mode = 0o600
		}
		if err := os.WriteFile(path, f.Data, mode); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	return nil
}
