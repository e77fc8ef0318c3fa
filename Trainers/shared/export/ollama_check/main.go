// ollama_check renders an Ollama Modelfile TEMPLATE the way Ollama does, with Go's own
// text/template, and reports the tool-call tag Ollama would detect in it.
//
// It reads one JSON object on stdin: {"template": "...", "messages": [OpenAI-style chat
// messages], "tools": [OpenAI-style tool definitions]} and writes one JSON object on stdout:
// {"tag": ..., "reads_tools": ..., "prompt": ..., "error": ...}.
//
// What it reproduces of Ollama (written from its source: template/template.go, tools/template.go,
// api/types.go): the "json" template function (json.Marshal), the template data (System,
// Messages, Tools), the collation of messages (system messages joined into System with a blank
// line; consecutive messages of one role merged, except tool results), the message and tool
// structs (a tool's parameter schema keeps only the keywords Ollama's struct has), the
// tools capability (the template names "tools"), and the tag detection (the first non-blank
// text inside the first if whose pipeline names the field .ToolCalls, cut at "{"; "{" when none).
package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"text/template"
	"text/template/parse"
)

// Ollama's api.Message, api.ToolCall and api.Tool, with the fields a template can read.
type ToolCallFunction struct {
	Index     int            `json:"index,omitempty"`
	Name      string         `json:"name"`
	Arguments map[string]any `json:"arguments"`
}

type ToolCall struct {
	ID       string           `json:"id,omitempty"`
	Function ToolCallFunction `json:"function"`
}

type Message struct {
	Role       string     `json:"role"`
	Content    string     `json:"content"`
	Thinking   string     `json:"thinking,omitempty"`
	ToolCalls  []ToolCall `json:"tool_calls,omitempty"`
	ToolName   string     `json:"tool_name,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
}

// PropertyType is one type or a list of types; one is written as a bare string.
type PropertyType []string

func (pt *PropertyType) UnmarshalJSON(data []byte) error {
	var one string
	if err := json.Unmarshal(data, &one); err == nil {
		*pt = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(data, &many); err != nil {
		return err
	}
	*pt = many
	return nil
}

func (pt PropertyType) MarshalJSON() ([]byte, error) {
	if len(pt) == 1 {
		return json.Marshal(pt[0])
	}
	return json.Marshal([]string(pt))
}

type ToolProperty struct {
	AnyOf       []ToolProperty          `json:"anyOf,omitempty"`
	Type        PropertyType            `json:"type,omitempty"`
	Items       any                     `json:"items,omitempty"`
	Description string                  `json:"description,omitempty"`
	Enum        []any                   `json:"enum,omitempty"`
	Properties  map[string]ToolProperty `json:"properties,omitempty"`
}

type ToolFunctionParameters struct {
	Type       string                  `json:"type"`
	Defs       any                     `json:"$defs,omitempty"`
	Items      any                     `json:"items,omitempty"`
	Required   []string                `json:"required,omitempty"`
	Properties map[string]ToolProperty `json:"properties"`
}

type ToolFunction struct {
	Name        string                 `json:"name"`
	Description string                 `json:"description,omitempty"`
	Parameters  ToolFunctionParameters `json:"parameters"`
}

type Tool struct {
	Type     string       `json:"type"`
	Items    any          `json:"items,omitempty"`
	Function ToolFunction `json:"function"`
}

// An OpenAI-style message as a client sends it (arguments as a JSON string or an object).
type requestMessage struct {
	Role       string `json:"role"`
	Content    string `json:"content"`
	ToolCallID string `json:"tool_call_id"`
	ToolCalls  []struct {
		ID       string `json:"id"`
		Function struct {
			Name      string          `json:"name"`
			Arguments json.RawMessage `json:"arguments"`
		} `json:"function"`
	} `json:"tool_calls"`
}

type request struct {
	Template string           `json:"template"`
	Messages []requestMessage `json:"messages"`
	Tools    []Tool           `json:"tools"`
}

type result struct {
	Tag        string `json:"tag"`
	ReadsTools bool   `json:"reads_tools"`
	Prompt     string `json:"prompt"`
	Error      string `json:"error,omitempty"`
}

var funcs = template.FuncMap{
	"json": func(v any) string {
		b, _ := json.Marshal(v)
		return string(b)
	},
}

func toMessages(in []requestMessage) ([]Message, error) {
	out := make([]Message, 0, len(in))
	for _, m := range in {
		msg := Message{Role: m.Role, Content: m.Content, ToolCallID: m.ToolCallID}
		for i, c := range m.ToolCalls {
			args := map[string]any{}
			raw := c.Function.Arguments
			var text string
			if json.Unmarshal(raw, &text) == nil {
				raw = []byte(text)
			}
			if len(raw) > 0 {
				if err := json.Unmarshal(raw, &args); err != nil {
					return nil, err
				}
			}
			msg.ToolCalls = append(msg.ToolCalls, ToolCall{ID: c.ID,
				Function: ToolCallFunction{Index: i, Name: c.Function.Name, Arguments: args}})
		}
		out = append(out, msg)
	}
	return out, nil
}

func collate(msgs []Message) (string, []*Message) {
	var system []string
	var collated []*Message
	for i := range msgs {
		if msgs[i].Role == "system" {
			system = append(system, msgs[i].Content)
		}
		if len(collated) > 0 && collated[len(collated)-1].Role == msgs[i].Role && msgs[i].Role != "tool" {
			collated[len(collated)-1].Content += "\n\n" + msgs[i].Content
		} else {
			collated = append(collated, &msgs[i])
		}
	}
	return strings.Join(system, "\n\n"), collated
}

// identifiers: every field and variable name in the tree, lower-cased (Ollama's Template.Vars).
func identifiers(n parse.Node, into map[string]bool) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			identifiers(c, into)
		}
	case *parse.ActionNode:
		identifiers(n.Pipe, into)
	case *parse.TemplateNode:
		identifiers(n.Pipe, into)
	case *parse.IfNode:
		identifiers(&n.BranchNode, into)
	case *parse.RangeNode:
		identifiers(&n.BranchNode, into)
	case *parse.WithNode:
		identifiers(&n.BranchNode, into)
	case *parse.BranchNode:
		identifiers(n.Pipe, into)
		identifiers(n.List, into)
		if n.ElseList != nil {
			identifiers(n.ElseList, into)
		}
	case *parse.PipeNode:
		if n == nil {
			return
		}
		for _, c := range n.Cmds {
			for _, a := range c.Args {
				identifiers(a, into)
			}
		}
	case *parse.FieldNode:
		for _, id := range n.Ident {
			into[strings.ToLower(id)] = true
		}
	case *parse.VariableNode:
		for _, id := range n.Ident {
			into[strings.ToLower(id)] = true
		}
	}
}

func branchLists(n parse.Node) (*parse.BranchNode, bool) {
	switch n := n.(type) {
	case *parse.IfNode:
		return &n.BranchNode, true
	case *parse.RangeNode:
		return &n.BranchNode, true
	case *parse.WithNode:
		return &n.BranchNode, true
	}
	return nil, false
}

// findToolCallNode: the first if (depth first, through if/range/with bodies) whose pipeline has
// a field node naming ToolCalls. A variable ($m.ToolCalls) is not a field node.
func findToolCallNode(nodes []parse.Node) *parse.IfNode {
	for _, node := range nodes {
		if n, ok := node.(*parse.IfNode); ok {
			for _, cmd := range n.Pipe.Cmds {
				for _, arg := range cmd.Args {
					if field, ok := arg.(*parse.FieldNode); ok {
						for _, id := range field.Ident {
							if id == "ToolCalls" {
								return n
							}
						}
					}
				}
			}
		}
		if list, ok := node.(*parse.ListNode); ok {
			if found := findToolCallNode(list.Nodes); found != nil {
				return found
			}
		}
		if b, ok := branchLists(node); ok {
			if found := findToolCallNode(b.List.Nodes); found != nil {
				return found
			}
			if b.ElseList != nil {
				if found := findToolCallNode(b.ElseList.Nodes); found != nil {
					return found
				}
			}
		}
	}
	return nil
}

// findTextNode: the first non-blank text, stopping at the first action or after the first
// nested if/range/with that holds none.
func findTextNode(nodes []parse.Node) *parse.TextNode {
	for _, node := range nodes {
		switch n := node.(type) {
		case *parse.TextNode:
			if len(bytes.TrimSpace(n.Text)) > 0 {
				return n
			}
		case *parse.ListNode:
			if found := findTextNode(n.Nodes); found != nil {
				return found
			}
		case *parse.ActionNode:
			return nil
		default:
			if b, ok := branchLists(node); ok {
				if found := findTextNode(b.List.Nodes); found != nil {
					return found
				}
				if b.ElseList != nil {
					if found := findTextNode(b.ElseList.Nodes); found != nil {
						return found
					}
				}
				return nil
			}
		}
	}
	return nil
}

func parseTag(tmpl *template.Template) string {
	tc := findToolCallNode(tmpl.Tree.Root.Nodes)
	if tc == nil {
		return "{"
	}
	tn := findTextNode(tc.List.Nodes)
	if tn == nil {
		return "{"
	}
	tag := strings.ReplaceAll(string(tn.Text), "\r\n", "\n")
	tag, _, _ = strings.Cut(tag, "{")
	tag = strings.TrimSpace(tag)
	if tag == "" {
		return "{"
	}
	return tag
}

func run(req request) result {
	tmpl, err := template.New("").Option("missingkey=zero").Funcs(funcs).Parse(req.Template)
	if err != nil {
		return result{Error: err.Error()}
	}
	names := map[string]bool{}
	identifiers(tmpl.Tree.Root, names)
	res := result{Tag: parseTag(tmpl), ReadsTools: names["tools"]}
	if !names["messages"] {
		res.Error = "the template does not read .Messages (Ollama would render it one turn at a time)"
		return res
	}
	messages, err := toMessages(req.Messages)
	if err != nil {
		res.Error = "tool call arguments: " + err.Error()
		return res
	}
	system, collated := collate(messages)
	var out bytes.Buffer
	err = tmpl.Execute(&out, map[string]any{"System": system, "Messages": collated, "Tools": req.Tools,
		"Response": "", "Think": false, "IsThinkSet": false})
	if err != nil {
		res.Error = err.Error()
		return res
	}
	res.Prompt = out.String()
	return res
}

func main() {
	var req request
	var res result
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		res = result{Error: "input: " + err.Error()}
	} else {
		res = run(req)
	}
	encoder := json.NewEncoder(os.Stdout)
	encoder.SetEscapeHTML(false)
	if err := encoder.Encode(res); err != nil {
		os.Exit(2)
	}
	if res.Error != "" {
		os.Exit(1)
	}
}
