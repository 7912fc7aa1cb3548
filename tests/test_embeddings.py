"""Embedding providers without network: Titan through botocore's Stubber, OpenAI through its
client's mock transport, the local model from its package, the hashing embedder for tests."""

from __future__ import annotations

import io
import json

import boto3
import numpy as np
import pytest
from botocore.config import Config
from botocore.response import StreamingBody
from botocore.stub import Stubber

from core import EmbeddingError, NewMemory
from core.embeddings import MODELS, get_embedder, resolve_model, use_embedder
from core.embeddings.bedrock import TitanEmbedder
from core.embeddings.openai import OpenAIEmbedder


def bedrock_client():
    return boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"mode": "adaptive", "max_attempts": 3}),
    )


def titan_response(vector: list[float]) -> dict:
    body = json.dumps({"embedding": vector, "inputTextTokenCount": 3}).encode()
    return {"body": StreamingBody(io.BytesIO(body), len(body)), "contentType": "application/json"}


def test_titan_v1_sends_one_request_per_text_and_returns_the_vectors() -> None:
    client = bedrock_client()
    with Stubber(client) as stub:
        for value in (0.1, 0.2):
            stub.add_response(
                "invoke_model",
                titan_response([value] * 1536),
                {
                    "modelId": "amazon.titan-embed-text-v1",
                    "body": json.dumps({"inputText": f"text {value}"}),
                    "contentType": "application/json",
                    "accept": "application/json",
                },
            )
        embedder = TitanEmbedder("amazon.titan-embed-text-v1", 1536, client=client)
        vectors = embedder.embed(["text 0.1", "text 0.2"])
        stub.assert_no_pending_responses()
    assert vectors.shape == (2, 1536) and np.allclose(vectors[:, 0], [0.1, 0.2])


def test_titan_v2_asks_for_the_store_dimension_normalised() -> None:
    client = bedrock_client()
    with Stubber(client) as stub:
        stub.add_response(
            "invoke_model",
            titan_response([0.5] * 256),
            {
                "modelId": "amazon.titan-embed-text-v2:0",
                "body": json.dumps({"inputText": "hello", "dimensions": 256, "normalize": True}),
                "contentType": "application/json",
                "accept": "application/json",
            },
        )
        vector = TitanEmbedder("amazon.titan-embed-text-v2:0", 256, client=client).embed_one("hello")
    assert vector.shape == (256,)


def test_titan_throttling_after_retries_is_a_clear_error() -> None:
    client = bedrock_client()
    with Stubber(client) as stub:
        stub.add_client_error(
            "invoke_model", service_error_code="ThrottlingException", service_message="Too many requests", http_status_code=429
        )
        with pytest.raises(EmbeddingError, match="Bedrock throttled amazon.titan-embed-text-v1 .* nothing was written"):
            TitanEmbedder("amazon.titan-embed-text-v1", 1536, client=client).embed_one("x")


def test_titan_access_denied_names_the_code() -> None:
    client = bedrock_client()
    with Stubber(client) as stub:
        stub.add_client_error(
            "invoke_model", service_error_code="AccessDeniedException", service_message="not enabled for this account", http_status_code=403
        )
        with pytest.raises(EmbeddingError, match="AccessDeniedException: not enabled for this account"):
            TitanEmbedder("amazon.titan-embed-text-v1", 1536, client=client).embed_one("x")


def test_titan_without_credentials_says_how_to_configure_them(monkeypatch) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    client = boto3.Session().client("bedrock-runtime", region_name="us-east-1")
    with pytest.raises(EmbeddingError, match="no AWS credentials found for Bedrock"):
        TitanEmbedder("amazon.titan-embed-text-v1", 1536, client=client).embed_one("x")


def test_titan_without_region_says_so(monkeypatch) -> None:
    for var in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    with pytest.raises(EmbeddingError, match="no AWS region configured for Bedrock: set AWS_REGION"):
        TitanEmbedder("amazon.titan-embed-text-v1", 1536).embed_one("x")


def test_a_failed_provider_batch_writes_nothing(svc, user) -> None:
    client = bedrock_client()
    use_embedder("amazon.titan-embed-text-v1", lambda dim: TitanEmbedder("amazon.titan-embed-text-v1", dim, client=client))
    try:
        store = svc.get_or_create_store(user.id, "titan", embedding_model="amazon.titan-embed-text-v1")
        with Stubber(client) as stub:
            stub.add_response("invoke_model", titan_response([0.1] * 1536))
            stub.add_client_error("invoke_model", service_error_code="ServiceUnavailableException", http_status_code=503)
            with pytest.raises(EmbeddingError):
                svc.add_memories(store.id, [NewMemory("first"), NewMemory("second")])
        assert svc.get_store(store.id).total_memories == 0
    finally:
        use_embedder("amazon.titan-embed-text-v1", None)


def mock_openai(respond):
    """An OpenAI client whose HTTP transport is `respond`: the real client code, no network."""
    import openai

    httpx = pytest.importorskip("httpx2")  # the HTTP library of openai >= 3 (httpx before it)
    client = openai.OpenAI(api_key="sk-test", max_retries=0, http_client=httpx.Client(transport=httpx.MockTransport(respond)))
    return client, httpx


def test_openai_embeds_a_batch_in_one_request_in_input_order() -> None:
    requests = []

    def respond(request):
        body = json.loads(request.content)
        requests.append(body)
        data = [{"object": "embedding", "index": i, "embedding": [float(i + 1)] * 1536} for i in range(len(body["input"]))]
        data.reverse()  # the API may answer out of order; `index` decides
        return httpx.Response(
            200, json={"object": "list", "data": data, "model": body["model"], "usage": {"prompt_tokens": 3, "total_tokens": 3}}
        )

    client, httpx = mock_openai(respond)
    vectors = OpenAIEmbedder("text-embedding-3-small", 1536, client=client).embed(["a", "b", "c"])
    assert len(requests) == 1 and requests[0]["input"] == ["a", "b", "c"] and "dimensions" not in requests[0]
    assert vectors[:, 0].tolist() == [1.0, 2.0, 3.0]


@pytest.mark.parametrize("status, message", [(429, "rate-limited"), (401, "rejected the API key"), (500, "HTTP 500")])
def test_openai_errors_are_clear(status, message) -> None:
    client, httpx = mock_openai(lambda request: httpx.Response(status, json={"error": {"message": "no"}}))
    with pytest.raises(EmbeddingError, match=message):
        OpenAIEmbedder("text-embedding-3-small", 1536, client=client).embed(["a"])


def test_openai_without_a_key_says_so(monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(EmbeddingError, match="OPENAI_API_KEY is not set"):
        OpenAIEmbedder("text-embedding-3-small", 1536).embed(["a"])


def test_a_provider_answer_of_the_wrong_size_is_refused() -> None:
    client = bedrock_client()
    with Stubber(client) as stub:
        stub.add_response("invoke_model", titan_response([0.1] * 1000))
        with pytest.raises(EmbeddingError, match=r"shape \(1, 1000\), expected \(1, 1536\)"):
            TitanEmbedder("amazon.titan-embed-text-v1", 1536, client=client).embed_one("x")


def test_local_model_is_offline_384_dimensional_and_normalised() -> None:
    embedder = get_embedder("all-MiniLM-L6-v2")
    vectors = embedder.embed(["The cat sat on the mat.", "A feline rested on the rug.", "Quarterly revenue grew 4%."])
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-4)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
    assert get_embedder("all-MiniLM-L6-v2") is embedder  # loaded once per process


def test_hashing_embedder_is_deterministic_and_named_as_a_test_tool() -> None:
    a = get_embedder("test-hashing").embed_one("same words")
    assert np.array_equal(a, get_embedder("test-hashing").embed_one("same words"))
    assert MODELS["test-hashing"].provider == "hashing"
    assert resolve_model("all-MiniLM-L6-v2") == (MODELS["all-MiniLM-L6-v2"], 384)


def test_the_local_model_loads_offline_without_switching_the_hub_off_for_the_process() -> None:
    """The model comes from its package directory; the rest of the process (another library that
    uses the hub) keeps the hub as configured. A hub that cannot be reached must not matter."""
    import os
    import subprocess
    import sys

    probe = (
        "import os, numpy as np\n"
        "from core.embeddings import get_embedder\n"
        "v = get_embedder('all-MiniLM-L6-v2').embed_one('offline')\n"
        "import huggingface_hub.constants as hub\n"
        "print(v.shape[0], os.environ.get('HF_HUB_OFFLINE'), os.environ.get('TRANSFORMERS_OFFLINE'), hub.HF_HUB_OFFLINE)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    env["HF_ENDPOINT"] = "http://127.0.0.1:9"  # nothing listens there: any download attempt fails
    done = subprocess.run(
        [sys.executable, "-c", probe],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["384", "None", "None", "False"]
