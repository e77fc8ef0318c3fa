module claudesidian/ollama_check

go 1.19
