"""Distribution heads (``model.distribution``), as DeepAR's: per target and horizon step the
network gives a distribution's parameters, trained by their negative log-likelihood; its
quantiles at any level and seeded sample paths are read from them at forecast time.

Layout: ``params (..., n_targets, 1 + extra)``, the location first. The location is the point
forecast (the mean), which instance normalization, the linear skip and the count link treat
as any point forecast; ``constrained`` maps the head's other raw values to their ranges.

- ``normal`` (loc, scale) and ``studentt`` (loc, scale, df) live in the scaled space. A scale
  is the head's softplus times the window's own spread (RevIN's std), so the spread is undone
  with the level. The data scaler is affine, so a quantile or a sample there is one in the
  data's units through the point's map (``x * std + mean``), and their likelihood there
  differs from the one in the data's units by ``log(std)``, a constant. ``df`` is kept above
  2: the variance exists, and the location is the mean.
- ``negbinomial`` (mean, n) lives on counts in the data's units, as its likelihood must: the
  mean is the count link's (a softplus on the data's units) and ``n``, the "total count"
  (variance ``mean + mean**2 / n``), is free of scale, as GluonTS parametrizes it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from scipy import special, stats
from torch import Tensor, nn

from forecast.data.scaling import Standardize

SMALLEST_SCALE = 1e-6  # in the scaled space: a window without spread still has a likelihood


class Distribution(nn.Module):
    """One family; ``scale`` is the targets' data scaler (counts are counted in the data's
    units), ``extra`` the parameters after the location."""

    extra = 1

    def __init__(self, scale: Standardize) -> None:
        super().__init__()
        self.scale = scale

    def constrained(self, raw: Tensor, spread: Tensor) -> Tensor:
        """The head's raw ``(..., extra)`` values as parameters; ``spread (..., 1)``: the
        window's scale, which multiplies a scale parameter."""
        return nn.functional.softplus(raw) * spread + SMALLEST_SCALE

    def nll(self, params: Tensor, y: Tensor) -> Tensor:
        """Negative log-likelihood of the scaled targets ``y (...)``, value by value."""
        raise NotImplementedError

    def quantiles(self, params: Tensor, levels: Sequence[float]) -> Tensor:
        """``(..., len(levels))`` in the scaled space."""
        raise NotImplementedError

    def sample(self, params: Tensor, n: int, seed: int) -> Tensor:
        """``(n, ...)`` sample paths in the scaled space, the same for the same seed."""
        with torch.random.fork_rng(devices=_cuda(params)):
            torch.manual_seed(seed)
            return self._draw(params, n)

    def _draw(self, params: Tensor, n: int) -> Tensor:
        raise NotImplementedError


class Normal(Distribution):
    def nll(self, params: Tensor, y: Tensor) -> Tensor:
        loc, scale = params.unbind(-1)
        z = (y - loc) / scale
        return 0.5 * math.log(2 * math.pi) + scale.log() + 0.5 * z.square()

    def quantiles(self, params: Tensor, levels: Sequence[float]) -> Tensor:
        z = torch.special.ndtri(params.new_tensor(list(levels)))
        return params[..., :1] + params[..., 1:2] * z

    def _draw(self, params: Tensor, n: int) -> Tensor:
        loc, scale = params.unbind(-1)
        return loc + scale * torch.randn((n, *loc.shape), dtype=loc.dtype, device=loc.device)


class StudentT(Distribution):
    extra = 2

    def constrained(self, raw: Tensor, spread: Tensor) -> Tensor:
        scale = super().constrained(raw[..., :1], spread)
        df = 2 + nn.functional.softplus(raw[..., 1:]) + SMALLEST_SCALE
        return torch.cat([scale, df], dim=-1)

    def nll(self, params: Tensor, y: Tensor) -> Tensor:
        loc, scale, df = params.unbind(-1)
        z = (y - loc) / scale
        normalizer = torch.lgamma(df / 2) - torch.lgamma((df + 1) / 2)
        normalizer = normalizer + 0.5 * torch.log(df * math.pi) + scale.log()
        return normalizer + (df + 1) / 2 * torch.log1p(z.square() / df)

    def quantiles(self, params: Tensor, levels: Sequence[float]) -> Tensor:
        df = _numpy(params[..., 2:3])
        t = params.new_tensor(special.stdtrit(df, np.asarray(levels, dtype=np.float64)))
        return params[..., :1] + params[..., 1:2] * t

    def _draw(self, params: Tensor, n: int) -> Tensor:
        loc, scale, df = params.unbind(-1)
        return torch.distributions.StudentT(df, loc, scale).sample((n,))


class NegativeBinomial(Distribution):
    def constrained(self, raw: Tensor, spread: Tensor) -> Tensor:
        return nn.functional.softplus(raw) + SMALLEST_SCALE  # n: free of the data's scale

    def counts(self, params: Tensor) -> tuple[Tensor, Tensor]:
        """The mean in counts (the data's units) and ``n``."""
        mean = self.scale.inverse(params[..., 0]).clamp_min(1e-8)
        return mean, params[..., 1]

    def nll(self, params: Tensor, y: Tensor) -> Tensor:
        mean, n = self.counts(params)
        counts = self.scale.inverse(y)
        log_total = torch.log(n + mean)
        log_pmf = torch.lgamma(counts + n) - torch.lgamma(n) - torch.lgamma(counts + 1)
        log_pmf = log_pmf + n * (n.log() - log_total) + counts * (mean.log() - log_total)
        return -log_pmf

    def quantiles(self, params: Tensor, levels: Sequence[float]) -> Tensor:
        mean, n = (_numpy(t.unsqueeze(-1)) for t in self.counts(params))
        counts = stats.nbinom.ppf(np.asarray(levels, dtype=np.float64), n, n / (n + mean))
        units = params.new_tensor(counts).movedim(-1, 0)  # the targets last, for the scaler
        return self.scale(units).movedim(0, -1)

    def _draw(self, params: Tensor, n: int) -> Tensor:
        mean, total = self.counts(params)
        counts = torch.distributions.NegativeBinomial(total, probs=mean / (mean + total))
        return self.scale(counts.sample((n,)))


# by model.distribution (forecast.model.config.DISTRIBUTIONS)
FAMILIES: dict[str, type[Distribution]] = {
    "normal": Normal,
    "studentt": StudentT,
    "negbinomial": NegativeBinomial,
}


def distribution(name: str, scale: Standardize) -> Distribution:
    return FAMILIES[name](scale)


def _numpy(t: Tensor) -> np.ndarray:
    return t.detach().double().cpu().numpy()


def _cuda(t: Tensor) -> list[torch.device]:
    """The device whose random state ``fork_rng`` keeps: a CUDA one (the CPU's it always does)."""
    return [t.device] if t.device.type == "cuda" else []
