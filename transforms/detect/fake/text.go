package fake

import (
	"fmt"
	"strings"
)

// ---- names and addresses ----

var (
	surnames = []string{"王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
		"何", "高", "林", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭", "曾", "肖", "田", "董",
		"袁", "潘", "于", "蒋", "蔡", "余", "杜", "叶", "程", "苏", "魏", "吕", "丁", "任", "沈", "姚", "卢", "姜", "崔",
		"钟", "谭", "陆", "汪", "范", "金", "石", "廖", "贾", "夏", "韦", "方", "白", "邹", "孟", "熊", "秦", "邱", "江",
		"尹", "薛", "段", "雷", "侯", "龙", "史", "陶", "黎", "贺", "顾", "毛", "郝", "龚", "邵", "万", "钱", "严", "武",
		"戴", "莫", "孔", "向", "汤", "欧阳", "司马", "诸葛", "上官"}
	givenChars = []string{"伟", "芳", "娜", "秀", "英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟",
		"涛", "明", "超", "兰", "霞", "平", "刚", "桂", "文", "华", "建", "国", "红", "玉", "志", "海", "小", "晓", "婷",
		"雪", "慧", "鑫", "宇", "浩", "子", "涵", "梓", "轩", "欣", "怡", "佳", "思", "雨", "泽", "博", "晨", "一", "诺",
		"嘉", "俊", "天", "琪", "瑶", "昊", "然", "辰", "悦", "萱", "睿", "铭", "阳", "凯", "鹏", "飞", "丹", "萍", "燕"}
	streets = []string{"中山", "人民", "解放", "建设", "和平", "文化", "新华", "长江", "黄河", "南京", "北京", "科技",
		"创业", "学院", "光明", "幸福", "迎宾", "滨江", "世纪", "青年", "朝阳", "东风", "胜利", "花园", "金融", "工业"}
	streetKinds = []string{"路", "路", "街", "大道", "大街", "巷"}
	estates     = []string{"阳光", "锦绣", "翠苑", "金色", "碧桂园", "万科", "绿城", "华府", "御景", "天悦", "春晓", "融创"}
	estateKinds = []string{"小区", "花园", "家园", "公寓", "苑", "城"}
)

// division is a county-level administrative division of GB/T 2260 with its
// code.
type division struct{ province, city, district, code string }

// divisions are real county-level divisions, at least one per province.
var divisions = []division{
	{"北京市", "", "东城区", "110101"}, {"北京市", "", "朝阳区", "110105"}, {"北京市", "", "海淀区", "110108"},
	{"天津市", "", "和平区", "120101"}, {"河北省", "石家庄市", "长安区", "130102"}, {"山西省", "太原市", "小店区", "140105"},
	{"内蒙古自治区", "呼和浩特市", "新城区", "150102"}, {"辽宁省", "沈阳市", "和平区", "210102"},
	{"吉林省", "长春市", "南关区", "220102"}, {"黑龙江省", "哈尔滨市", "道里区", "230102"},
	{"上海市", "", "黄浦区", "310101"}, {"上海市", "", "徐汇区", "310104"}, {"上海市", "", "浦东新区", "310115"},
	{"江苏省", "南京市", "玄武区", "320102"}, {"江苏省", "苏州市", "姑苏区", "320508"},
	{"浙江省", "杭州市", "上城区", "330102"}, {"浙江省", "杭州市", "西湖区", "330106"},
	{"安徽省", "合肥市", "瑶海区", "340102"}, {"福建省", "福州市", "鼓楼区", "350102"},
	{"福建省", "厦门市", "思明区", "350203"}, {"江西省", "南昌市", "东湖区", "360102"},
	{"山东省", "济南市", "历下区", "370102"}, {"山东省", "青岛市", "市南区", "370202"},
	{"河南省", "郑州市", "中原区", "410102"}, {"湖北省", "武汉市", "江岸区", "420102"},
	{"湖北省", "武汉市", "武昌区", "420106"}, {"湖南省", "长沙市", "芙蓉区", "430102"},
	{"广东省", "广州市", "越秀区", "440104"}, {"广东省", "广州市", "天河区", "440106"},
	{"广东省", "深圳市", "福田区", "440304"}, {"广东省", "深圳市", "南山区", "440305"},
	{"广西壮族自治区", "南宁市", "兴宁区", "450102"}, {"海南省", "海口市", "龙华区", "460106"},
	{"重庆市", "", "渝中区", "500103"}, {"四川省", "成都市", "锦江区", "510104"}, {"四川省", "成都市", "武侯区", "510107"},
	{"贵州省", "贵阳市", "南明区", "520102"}, {"云南省", "昆明市", "五华区", "530102"},
	{"西藏自治区", "拉萨市", "城关区", "540102"}, {"陕西省", "西安市", "新城区", "610102"},
	{"陕西省", "西安市", "雁塔区", "610113"}, {"甘肃省", "兰州市", "城关区", "620102"},
	{"青海省", "西宁市", "城东区", "630102"}, {"宁夏回族自治区", "银川市", "兴庆区", "640104"},
	{"新疆维吾尔自治区", "乌鲁木齐市", "天山区", "650102"},
}

// Name returns a Chinese person name: a common surname (now and then a
// two-character one) and a given name of one or two characters.
func (g *Gen) Name() string {
	n := pick(g, surnames) + pick(g, givenChars)
	if g.chance(0.7) {
		n += pick(g, givenChars)
	}
	return n
}

// Address returns a postal address: province, city, district, street and
// number, often with an estate, building, unit and room.
func (g *Gen) Address() string {
	d := pick(g, divisions)
	var b strings.Builder
	if g.chance(0.8) {
		b.WriteString(d.province)
		b.WriteString(d.city)
	} else if d.city != "" {
		b.WriteString(d.city)
	} else {
		b.WriteString(d.province)
	}
	b.WriteString(d.district)
	fmt.Fprintf(&b, "%s%s%d号", pick(g, streets), pick(g, streetKinds), 1+g.r.IntN(999))
	if g.chance(0.6) {
		fmt.Fprintf(&b, "%s%s%d栋%d单元%d室", pick(g, estates), pick(g, estateKinds), 1+g.r.IntN(30), 1+g.r.IntN(6),
			(1+g.r.IntN(32))*100+1+g.r.IntN(4))
	}
	return b.String()
}

// ---- sentences ----

// Planted is a value placed in a generated text.
type Planted struct {
	// Kind is what the value is.
	Kind Kind
	// Start and End are its byte offsets in the text: Text[Start:End] is
	// the value as written.
	Start, End int
}

// Sample is a generated text and the values planted in it, in order.
type Sample struct {
	Text    string
	Planted []Planted
}

// Values returns the planted values of kind k as written.
func (s Sample) Values(k Kind) []string {
	var out []string
	for _, p := range s.Planted {
		if p.Kind == k {
			out = append(out, s.Text[p.Start:p.End])
		}
	}
	return out
}

// templates are sentences from an e-commerce platform's free-text fields:
// buyer notes, search queries, customer-service chat, invoice requests and
// device logs. A slot {kind} is filled with a value of that kind; {company}
// and {product} are filled with filler that is neither personal data nor a
// look-alike. Values often touch Chinese characters directly, as they do in
// real Chinese text.
var templates = []string{
	// buyer notes
	"麻烦放快递柜，电话{phone}，谢谢",
	"收件人{name}，电话{phone}，地址{address}",
	"到了打我电话{phone}，不在家放门卫",
	"请发顺丰，联系人：{name} {phone}",
	"周末送货，{address}，{name}收",
	"送到{address}，联系{name}{phone}",
	"备注：电话{phone}或者{phone}都可以",
	"手机{phone}，座机打不通别打客服电话{hotline}",
	"订单号{order_number}，收货人电话{phone}",
	"地址改成{address}，电话不变",
	"{date}之前送到，电话{phone}",
	"帮我开发票，抬头{company}，税号{uscc}，发到{email}",
	"发票抬头：{company} 税号：{uscc}",
	"开票信息 税号{uscc} 邮箱{email}",
	"个人发票，{name}，身份证{resident_id}",
	"报关需要身份证号码：{resident_id}，收件人{name}",
	"跨境购实名：{name}，身份证号{resident_id}，电话{phone}",
	"给孩子买的，孩子身份证{resident_id}",
	"退款请退到银行卡{bank_card}，户名{name}",
	"货到付款，不要打{hotline}，直接联系{phone}",
	"价格{price}太贵了，能便宜点吗，加我{phone}",
	// search queries
	"{phone}",
	"{phone} 是谁的号码",
	"查询{phone}归属地",
	"{product} 价格{price}",
	"{imei} 查询激活时间",
	"imei {imei} 保修",
	"身份证{resident_id}查询",
	"{bank_card}是哪个银行的卡",
	"ip {ip} 在哪里",
	"mac地址{mac}厂商",
	"{email}",
	"{product} {version} 闪退",
	"{product} {version}怎么降级",
	"快递单号{order_number}查询",
	"{order_number}",
	"{hotline}",
	"{timestamp}",
	"{non_mobile}",
	// chat
	"你好，我的手机号是{phone}",
	"加我微信{phone}吧",
	"我邮箱{email}，麻烦发我一下",
	"邮箱是{email}谢谢",
	"我的银行卡号是{bank_card}，开户行{address}支行",
	"卡号：{bank_card}，姓名：{name}",
	"身份证号码:{resident_id}",
	"我家孩子的身份证是{resident_id}，可以实名吗",
	"设备IMEI:{imei}无法激活",
	"IMEI号：{imei}，序列号{order_number}",
	"手机串号{imei}，帮我查一下",
	"路由器MAC {mac} 连不上网",
	"我的设备mac是{mac}，ip是{ip}",
	"登录IP {ip} 异常，不是我本人",
	"公司税号是{uscc}，统一社会信用代码就是这个",
	"客服你好，订单{order_number}还没发货",
	"我{date}下的单，订单号{order_number}",
	"客服电话{hotline}一直打不通",
	"付款{price}，订单{order_number}，怎么还没到",
	"身份证{bad_resident_id}提示格式错误",
	"卡号{bad_bank_card}提示无效",
	"IMEI {bad_imei} 查不到",
	"税号{bad_uscc}校验不通过",
	"这个号{non_mobile}打不通",
	"时间戳{timestamp}对应哪天",
	"升级{version}之后有bug",
	// device logs
	"device_id={imei} ip={ip}",
	"client {ip} mac={mac} ts={timestamp}",
	"IMEI1:{imei} IMEI2:{imei}",
	"IMEI{imei}",
	"上报设备{mac}，地址{ip}，{version}",
	"[{timestamp}] login from {ip}",
}

// slot is a parsed template piece: literal text, or a slot of a kind.
type slot struct {
	text string
	kind Kind // empty for literal text
}

// parsedTemplates are the templates split into literals and slots.
var parsedTemplates = func() [][]slot {
	out := make([][]slot, len(templates))
	for i, t := range templates {
		p, err := parseTemplate(t)
		if err != nil {
			panic(err) // the templates above are fixed: a bug
		}
		out[i] = p
	}
	return out
}()

// parseTemplate splits a template at its {kind} slots.
func parseTemplate(t string) ([]slot, error) {
	var out []slot
	for {
		i := strings.IndexByte(t, '{')
		if i < 0 {
			if t != "" {
				out = append(out, slot{text: t})
			}
			return out, nil
		}
		j := strings.IndexByte(t[i:], '}')
		if j < 0 {
			return nil, fmt.Errorf("fake: template %q: unclosed slot", t)
		}
		if i > 0 {
			out = append(out, slot{text: t[:i]})
		}
		k := Kind(t[i+1 : i+j])
		if k != "company" && k != "product" {
			if _, err := New(0).Value(k); err != nil {
				return nil, fmt.Errorf("fake: template %q: %w", t, err)
			}
		}
		out = append(out, slot{kind: k})
		t = t[i+j+1:]
	}
}

var (
	companies = []string{"杭州某某科技有限公司", "北京星河商贸有限公司", "深圳前海云帆网络科技有限公司",
		"上海宏达贸易有限公司", "广州市天河区李记餐饮店", "成都锦程物流有限公司"}
	products = []string{"华为 mate60 pro 手机壳", "小米14 充电器", "iPhone 15 Pro 256G", "蓝牙耳机", "儿童保温杯",
		"羽绒服 女 中长款", "茅台 飞天 53度", "戴森吹风机", "机械键盘 青轴", "路由器 wifi6"}
)

// Fill fills a template: each {kind} slot gets a fresh value of that kind
// (see Value), {company} and {product} get filler. It returns the text and
// the planted values of all kinds.
func (g *Gen) Fill(template string) (Sample, error) {
	p, err := parseTemplate(template)
	if err != nil {
		return Sample{}, err
	}
	return g.fill(p), nil
}

func (g *Gen) fill(p []slot) Sample {
	var (
		b strings.Builder
		s Sample
	)
	for _, sl := range p {
		switch sl.kind {
		case "":
			b.WriteString(sl.text)
		case "company":
			b.WriteString(pick(g, companies))
		case "product":
			b.WriteString(pick(g, products))
		default:
			v, _ := g.Value(sl.kind) // parseTemplate checked the kind
			start := b.Len()
			b.WriteString(v)
			s.Planted = append(s.Planted, Planted{Kind: sl.kind, Start: start, End: b.Len()})
		}
	}
	s.Text = b.String()
	return s
}

// Sentence returns a realistic sentence that holds at least one value of
// kind k (personal data or a look-alike), with the ground truth of every
// value planted in it. It returns an error for a kind no template plants.
func (g *Gen) Sentence(k Kind) (Sample, error) {
	n := 0
	for _, p := range parsedTemplates {
		if hasKind(p, k) {
			n++
		}
	}
	if n == 0 {
		return Sample{}, fmt.Errorf("fake: no template plants %q", k)
	}
	n = g.r.IntN(n)
	for _, p := range parsedTemplates {
		if hasKind(p, k) {
			if n == 0 {
				return g.fill(p), nil
			}
			n--
		}
	}
	panic("unreachable")
}

// AnySentence returns a sentence from any template.
func (g *Gen) AnySentence() Sample { return g.fill(pick(g, parsedTemplates)) }

func hasKind(p []slot, k Kind) bool {
	for _, sl := range p {
		if sl.kind == k {
			return true
		}
	}
	return false
}
