package transforms

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestGeneralizeAddress(t *testing.T) {
	// input, city level, province level ("" for NULL)
	cases := [][3]string{
		{"广东省深圳市南山区科技园路1号", "广东省深圳市", "广东省"},
		{"广东深圳市南山区科技园路1号", "广东省深圳市", "广东省"},
		{"广东深圳南山区", "广东省深圳市", "广东省"},
		{"广东省广州", "广东省广州市", "广东省"},
		{"浙江省嘉兴市经开区南湖街道新华路469号恒大名都9号楼3单元2302室", "浙江省嘉兴市", "浙江省"},
		{"北京市朝阳区建国路88号", "北京市", "北京市"},
		{"北京朝阳区", "北京市", "北京市"},
		{"上海上海市浦东新区", "上海市", "上海市"},
		{"重庆市渝中区", "重庆市", "重庆市"},
		{"天津市和平区", "天津市", "天津市"},
		{"内蒙古自治区呼和浩特市新城区", "内蒙古自治区呼和浩特市", "内蒙古自治区"},
		{"内蒙古包头市", "内蒙古自治区包头市", "内蒙古自治区"},
		{"内蒙古锡林郭勒盟锡林浩特市", "内蒙古自治区锡林郭勒盟", "内蒙古自治区"},
		{"广西壮族自治区南宁市青秀区", "广西壮族自治区南宁市", "广西壮族自治区"},
		{"广西南宁市", "广西壮族自治区南宁市", "广西壮族自治区"},
		{"广西自治区桂林市", "广西壮族自治区桂林市", "广西壮族自治区"},
		{"宁夏银川", "宁夏回族自治区银川市", "宁夏回族自治区"},
		{"西藏阿里地区噶尔县", "西藏自治区阿里地区", "西藏自治区"},
		{"新疆伊犁州伊宁市", "新疆维吾尔自治区伊犁哈萨克自治州", "新疆维吾尔自治区"},
		{"新疆维吾尔自治区石河子市", "新疆维吾尔自治区石河子市", "新疆维吾尔自治区"},
		{"黑龙江省大兴安岭地区漠河市", "黑龙江省大兴安岭地区", "黑龙江省"},
		{"黑龙江大兴安岭", "黑龙江省大兴安岭地区", "黑龙江省"},
		{"吉林省吉林市船营区", "吉林省吉林市", "吉林省"},
		{"吉林市船营区", "吉林省吉林市", "吉林省"},
		{"吉林延边州延吉市", "吉林省延边朝鲜族自治州", "吉林省"},
		{"延边朝鲜族自治州延吉市", "吉林省延边朝鲜族自治州", "吉林省"},
		{"青海省海南藏族自治州共和县", "青海省海南藏族自治州", "青海省"},
		{"海南州共和县", "青海省海南藏族自治州", "青海省"},
		{"海南省海口市美兰区", "海南省海口市", "海南省"},
		{"海南三亚", "海南省三亚市", "海南省"},
		{"海南省琼海市", "海南省琼海市", "海南省"},
		{"海南陵水县", "海南省陵水黎族自治县", "海南省"},
		{"湖北省仙桃市", "湖北省仙桃市", "湖北省"},
		{"湖北神农架林区", "湖北省神农架林区", "湖北省"},
		{"湖北恩施州", "湖北省恩施土家族苗族自治州", "湖北省"},
		{"山西大同市", "山西省大同市", "山西省"},
		{"云南西双版纳傣族自治州景洪市", "云南省西双版纳傣族自治州", "云南省"},
		{"深圳市南山区", "广东省深圳市", "广东省"},
		{"香港九龙弥敦道", "香港特别行政区", "香港特别行政区"},
		{"香港特别行政区中西区", "香港特别行政区", "香港特别行政区"},
		{"澳门特区", "澳门特别行政区", "澳门特别行政区"},
		{"台湾省台北市", "台湾省", "台湾省"},
		{"中国广东省广州市天河区", "广东省广州市", "广东省"},
		{"中华人民共和国北京市", "北京市", "北京市"},
		{" 广东省 深圳市 南山区", "广东省深圳市", "广东省"},
		{"广东省，深圳市", "广东省深圳市", "广东省"},
		{"广东省/深圳市/南山区", "广东省深圳市", "广东省"},
		{"\u3000广东省\u3000深圳市", "广东省深圳市", "广东省"},
		{"广东省南山区", "", "广东省"},          // no city: nothing to keep at city level
		{"广东省杭州市", "", "广东省"},          // a city of another province is not read
		{"广东\xff深圳", "", "广东省"},        // invalid UTF-8 stops the city
		{"南山区科技园", "", ""},             // no province, no city
		{"北京路123号", "", ""},            // a street named after a city
		{"中山路1号", "", ""},              // a short city name alone is not enough
		{"广东中山路1号", "", "广东省"},         // nor with a street after it
		{"广东省中山市石岐区", "广东省中山市", "广东省"}, // but a full name is
		{"", "", ""},
		{"\xff\xfe", "", ""},
		{"广", "", ""},
		{"广东", "", "广东省"},
		{"Guangdong Shenzhen", "", ""},
		{megabyte, "", ""},
		{"广东省深圳市" + megabyte, "广东省深圳市", "广东省"},
	}
	var in []*string
	for _, c := range cases {
		in = append(in, sp(c[0]))
	}
	in = append(in, nil)
	for level, col := range map[string]int{"city": 1, "province": 2} {
		want := map[string]string{}
		for _, c := range cases {
			want[c[0]] = c[col]
		}
		checkAgainst(t, bind(t, "generalize_address", map[string]any{"level": level}), in, func(s string) (string, bool) {
			return want[s], want[s] != ""
		})
	}
}

// TestDivisionTable checks the embedded table against the national
// statistics: 34 provincial-level divisions; 333 prefecture-level ones, of
// them 293 cities, 7 prefectures, 30 autonomous prefectures and 3 leagues;
// per-province counts for a sample; names unique; aliases unambiguous.
func TestDivisionTable(t *testing.T) {
	if n := len(divisions.provinces); n != 34 {
		t.Errorf("%d provincial-level divisions, want 34", n)
	}
	kinds := map[string]int{}
	perProvince := map[string]int{}
	names := map[string]bool{}
	for _, p := range divisions.provinces {
		if names[p.name] {
			t.Errorf("%s twice", p.name)
		}
		names[p.name] = true
		for _, c := range p.cities {
			if names[c.name] {
				t.Errorf("%s twice", c.name)
			}
			names[c.name] = true
			if c.direct {
				continue
			}
			perProvince[p.name]++
			switch {
			case strings.HasSuffix(c.name, "自治州"):
				kinds["自治州"]++
			case strings.HasSuffix(c.name, "地区"):
				kinds["地区"]++
			case strings.HasSuffix(c.name, "盟"):
				kinds["盟"]++
			case strings.HasSuffix(c.name, "市"):
				kinds["市"]++
			default:
				t.Errorf("%s: not a prefecture-level name", c.name)
			}
		}
	}
	for k, want := range map[string]int{"市": 293, "地区": 7, "自治州": 30, "盟": 3} {
		if kinds[k] != want {
			t.Errorf("%d %s, want %d", kinds[k], k, want)
		}
	}
	for p, want := range map[string]int{"广东省": 21, "河北省": 11, "四川省": 21, "云南省": 16, "新疆维吾尔自治区": 14,
		"青海省": 8, "内蒙古自治区": 12, "海南省": 4, "西藏自治区": 7, "北京市": 0, "台湾省": 0} {
		if perProvince[p] != want {
			t.Errorf("%s: %d prefecture-level divisions, want %d", p, perProvince[p], want)
		}
	}
	seen := map[string]string{}
	check := func(where string, x aliasIndex) {
		for _, l := range x {
			for _, a := range l {
				target := a.prov.name
				if a.city != nil {
					target += a.city.name
				}
				if prev, ok := seen[where+a.text]; ok && prev != target {
					t.Errorf("%s: %q means %s and %s", where, a.text, prev, target)
				}
				seen[where+a.text] = target
			}
		}
	}
	check("", divisions.top)
	for _, p := range divisions.provinces {
		check(p.name+": ", p.index)
	}
	for _, code := range []int{11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46,
		50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82} {
		if !provinceCodes[code] {
			t.Errorf("province code %d missing", code)
		}
	}
	if provinceCodes[10] || provinceCodes[99] || provinceCodes[16] {
		t.Error("codes that are no province are accepted")
	}
	if _, err := parseDivisions("11 北京市"); err == nil {
		t.Error("a short line parsed")
	}
}

// FuzzGeneralizeAddress: the output is NULL or one of the canonical names,
// and the city level agrees with the province level.
func FuzzGeneralizeAddress(f *testing.F) {
	for _, s := range []string{"广东深圳市南山区", "北京路1号", "海南州共和县", "中国 香港", "\xff广东", "吉林市", "内蒙古自治区"} {
		f.Add(s)
	}
	valid := map[string]bool{}
	for _, p := range divisions.provinces {
		valid[p.name] = true
		for _, c := range p.cities {
			valid[string(c.out)] = true
		}
	}
	city := bind(f, "generalize_address", nil)
	prov := bind(f, "generalize_address", map[string]any{"level": "province"})
	f.Fuzz(func(t *testing.T, s string) {
		mem := checkedMem(t)
		c := applyStrings(t, mem, city, []*string{&s})[0]
		p := applyStrings(t, mem, prov, []*string{&s})[0]
		if c != nil && !valid[*c] || p != nil && !valid[*p] {
			t.Fatalf("%q: not a canonical name: %q %q", s, deref(c), deref(p))
		}
		if c != nil && (p == nil || !strings.HasPrefix(*c, *p)) {
			t.Fatalf("%q: city %q outside province %q", s, *c, deref(p))
		}
		if p != nil && !utf8.ValidString(*p) {
			t.Fatal("invalid UTF-8")
		}
	})
}
