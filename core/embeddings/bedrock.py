"""Amazon Titan text embeddings through Bedrock (`bedrock-runtime` InvokeModel).

Titan embeds one text per request, so a batch is sent as parallel requests. botocore's adaptive
retry mode retries throttling and transient errors with backoff and slows the client down while
Bedrock throttles; what still fails after that (an error answer, an unreachable endpoint, an
answer without an embedding) becomes one EmbeddingError and nothing is written.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from core.embeddings.base import Embedder
from core.errors import EmbeddingError

MAX_ATTEMPTS = 8  # in all, the first attempt included
PARALLEL_REQUESTS = 8


def make_client() -> Any:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import NoRegionError

    try:
        return boto3.client(
            "bedrock-runtime",
            # botocore itself reads AWS_DEFAULT_REGION (and profiles) only; AWS_REGION, which the
            # README and the error below name, would otherwise be ignored
            region_name=os.environ.get("AWS_REGION") or None,
            # botocore's "max_attempts" counts retries only; "total_max_attempts" counts every attempt
            config=Config(retries={"mode": "adaptive", "total_max_attempts": MAX_ATTEMPTS}, connect_timeout=5, read_timeout=60),
        )
    except NoRegionError as exc:
        raise EmbeddingError("no AWS region configured for Bedrock: set AWS_REGION (e.g. us-east-1)") from exc


class TitanEmbedder(Embedder):
    def __init__(self, model: str, dim: int, client: Any | None = None):
        self.model = model
        self.dim = dim
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = make_client()
        return self._client

    def _body(self, text: str) -> str:
        body: dict[str, Any] = {"inputText": text}
        if self.model.startswith("amazon.titan-embed-text-v2"):
            body.update(dimensions=self.dim, normalize=True)
        return json.dumps(body)

    def _embed_text(self, text: str) -> list[float]:
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

        try:
            response = self.client.invoke_model(
                modelId=self.model, body=self._body(text), contentType="application/json", accept="application/json"
            )
            payload = json.loads(response["body"].read())
        except NoCredentialsError as exc:
            raise EmbeddingError(
                "no AWS credentials found for Bedrock: set AWS_PROFILE or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            ) from exc
        except NoRegionError as exc:
            raise EmbeddingError("no AWS region configured for Bedrock: set AWS_REGION (e.g. us-east-1)") from exc
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "Error")
            message = exc.response.get("Error", {}).get("Message", "")
            if code == "ThrottlingException":
                # the attempts botocore really made (the client may be configured otherwise than MAX_ATTEMPTS)
                attempts = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", MAX_ATTEMPTS - 1) + 1
                raise EmbeddingError(f"Bedrock throttled {self.model} after {attempts} attempts; nothing was written, retry later") from exc
            raise EmbeddingError(f"Bedrock refused {self.model}: {code}: {message}".rstrip(": ")) from exc
        except BotoCoreError as exc:
            # connection reset, timeout, endpoint unreachable: botocore has retried them already
            raise EmbeddingError(f"cannot reach Bedrock for {self.model}: {exc}; nothing was written, retry later") from exc
        except ValueError as exc:  # the body is not JSON (json.JSONDecodeError is a ValueError)
            raise EmbeddingError(f"Bedrock answered {self.model} with a body that is not JSON") from exc
        vector = payload.get("embedding") if isinstance(payload, dict) else None
        if not isinstance(vector, list):
            raise EmbeddingError(f"Bedrock answered {self.model} without an embedding")
        return vector

    def _embed(self, texts: list[str]) -> list[list[float]]:
        if len(texts) == 1:
            return [self._embed_text(texts[0])]
        with ThreadPoolExecutor(max_workers=PARALLEL_REQUESTS) as pool:
            return list(pool.map(self._embed_text, texts))
