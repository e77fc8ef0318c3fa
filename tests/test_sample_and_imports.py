import json
import subprocess
import sys

from conftest import ROOT

from SelfPlay.teacher import build_sample
from Tools.schema.validate import validate_record


def test_shipped_sample_is_what_the_generator_writes(registry):
    sft, kto = build_sample()
    for name, records in (("sample_sft.jsonl", sft), ("sample_kto.jsonl", kto)):
        shipped = [json.loads(l) for l in (ROOT / "Datasets" / "sample" / name).read_text().splitlines()]
        assert shipped == records, f"regenerate with: python Tools/sample_data.py ({name} is stale)"
    for positive, negative in zip(kto[::2], kto[1::2]):
        assert validate_record(positive, registry) == []
        # one validator code per negative, the one the teacher states (metadata.codes: the one convention)
        assert [f.code for f in validate_record(negative, registry)] == negative["metadata"]["codes"]


def test_data_tools_import_fast_and_without_torch():
    code = (
        "import sys, time; t = time.perf_counter(); import Tools.schema, Tools.validate_syngen, Tools.interleave_dataset, "
        "Tools.analyze_tool_coverage, SelfPlay.teacher; print(time.perf_counter() - t, 'torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert float(out[0]) < 0.5 and out[1] == "False"


def test_docs_list_every_finding_code():
    from Tools.schema.issues import markdown_table

    assert markdown_table() in (ROOT / "docs" / "validate.md").read_text(), (
        "docs/validate.md is stale: paste Tools.schema.issues.markdown_table()"
    )
