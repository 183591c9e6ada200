package kazoo

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestParseQuery(t *testing.T) {
	p := func(kv ...string) []Param {
		var ps []Param
		for i := 0; i < len(kv); i += 2 {
			ps = append(ps, Param{kv[i], kv[i+1]})
		}
		return ps
	}
	tests := []struct {
		raw  string
		want []Param
	}{
		{"", nil},
		{"&", nil},
		{"a=1", p("a", "1")},
		{"a", p("a", "")},
		{"a=", p("a", "")},
		{"=v", p("", "v")},
		{"a=1=2", p("a", "1=2")},
		{"a=1;b=2", p("a", "1;b=2")},
		{"a+b=c+d%20e", p("a b", "c d e")},
		{"a=%2B%2b%40%C3%A9", p("a", "++@é")},
		{"a=%zz%4%%%2", p("a", "%zz%4%%%2")},
		{"a=100%", p("a", "100%")},
		{"a%5Bb%5D=1", p("a[b]", "1")},
		// Contract §6 vector 11: the query of Kazoo's own test layout.
		{"from=pqc_cb_storageA/D/N?from=pqc_cb_storage&media_id=D&from=x%40y",
			p("from", "pqc_cb_storageA/D/N?from=pqc_cb_storage", "media_id", "D", "from", "x@y")},
		// Contract §6 vector 15.
		{"custom_channel_vars[Account-ID]=A&tags[]=a&tags[]=b&&x=1&",
			p("custom_channel_vars[Account-ID]", "A", "tags[]", "a", "tags[]", "b", "x", "1")},
		// Contract §6 vector 9: the validation probe's GET.
		{"att_uuid=5c1b0a0a4bd04bd9b2a4e7a3f2a5b8c1&content=some+random+content%3A+0123456789abcdef0123456789abcdef&request_id=req-1&id=0123456789abcdef0123456789abcdef",
			p("att_uuid", "5c1b0a0a4bd04bd9b2a4e7a3f2a5b8c1", "content", "some random content: 0123456789abcdef0123456789abcdef",
				"request_id", "req-1", "id", "0123456789abcdef0123456789abcdef")},
		// Contract §2: a base URL's own query with the segment glued on.
		{"key=abc123&recording=A/D/N&media_id=D", p("key", "abc123", "recording", "A/D/N", "media_id", "D")},
		{"&&a=1&&&b=2&", p("a", "1", "b", "2")},
	}
	for _, tt := range tests {
		if got := ParseQuery(tt.raw); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseQuery(%q) = %q, want %q", tt.raw, got, tt.want)
		}
	}
}

func TestQueryToJSON(t *testing.T) {
	tests := []struct {
		raw, want string
	}{
		{"", `{}`},
		{"a=1&b=x+y", `{"a":"1","b":"x y"}`},
		{"a=1&a=2", `{"a":"2"}`},
		{"a[b][c]=v&a[b][d]=w&a[e]=x", `{"a":{"b":{"c":"v","d":"w"},"e":"x"}}`},
		{"k[]=1&k[]=2&k[]=3", `{"k":["1","2","3"]}`},
		{"a[b][]=1&a[b][]=2", `{"a":{"b":["1","2"]}}`},
		{"a[][b]=1&a[][b]=2", `{"a":[{"b":"1"},{"b":"2"}]}`},
		{"utc_seconds=63754892074&streamable=true", `{"streamable":"true","utc_seconds":"63754892074"}`},
		// Contract §6 vector 15.
		{"custom_channel_vars[Account-ID]=A&tags[]=a&tags[]=b&&x=1&",
			`{"custom_channel_vars":{"Account-ID":"A"},"tags":["a","b"],"x":"1"}`},
		// Contract §6 vector 11: a duplicate key keeps its last value.
		{"from=pqc_cb_storageA/D/N?from=pqc_cb_storage&media_id=D&from=x%40y", `{"from":"x@y","media_id":"D"}`},
		// Contract §6 vector 12: field_list [] leaves media_id to name the object.
		{"media_id=202004-03b64407c4f1f83340a9ef39fc0d02d8&call_id=OTk5&folder=new",
			`{"call_id":"OTk5","folder":"new","media_id":"202004-03b64407c4f1f83340a9ef39fc0d02d8"}`},
		// Conflicting shapes: the later one wins.
		{"a=1&a[b]=2", `{"a":{"b":"2"}}`},
		{"a[b]=2&a=1", `{"a":"1"}`},
		{"a[]=1&a[b]=2", `{"a":{"b":"2"}}`},
		{"a[b]=1&a[]=2", `{"a":["2"]}`},
		{"a=1&a[]=2", `{"a":["2"]}`},
		{"a[b]=1&a[b][c]=2", `{"a":{"b":{"c":"2"}}}`},
		// Keys without the name[seg] shape stay literal.
		{"[a]=1&a[b=2&a]=3&a[b]c=4&a[b][=5", `{"[a]":"1","a[b":"2","a[b][":"5","a[b]c":"4","a]":"3"}`},
		{"=v&a[]", `{"":"v","a":[""]}`},
		{"a[b[c]]=1", `{"a[b[c]]":"1"}`},
		{"a[b[c]=1", `{"a":{"b[c":"1"}}`},
		{"a" + strings.Repeat("[x]", maxQueryDepth+1) + "=1", `{"a` + strings.Repeat("[x]", maxQueryDepth+1) + `":"1"}`},
		{"a" + strings.Repeat("[x]", 2) + "=1", `{"a":{"x":{"x":"1"}}}`},
	}
	for _, tt := range tests {
		got, err := json.Marshal(QueryToJSON(ParseQuery(tt.raw)))
		if err != nil || string(got) != tt.want {
			t.Errorf("QueryToJSON(%q) = %s, %v; want %s", tt.raw, got, err, tt.want)
		}
	}
	// maxQueryDepth segments still nest.
	deep := QueryToJSON(ParseQuery("a" + strings.Repeat("[x]", maxQueryDepth) + "=1"))
	v := any(deep["a"])
	for range maxQueryDepth {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("nesting stopped early: %v", v)
		}
		v = m["x"]
	}
	if v != "1" {
		t.Errorf("deepest value %v", v)
	}
}
