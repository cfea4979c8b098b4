"""Control valve with the two-parameter stiction model of Choudhury, Thornhill & Shah (2005).

The model is data-driven: it maps the controller output ``u`` (% of span) to the valve stem
position ``x`` (% of span) with two parameters, both in % of span:

* ``S`` — deadband plus stickband: after the valve has come to rest (the input reversed or
  stopped), the input must move more than ``S`` away from the input at which the valve stuck,
  ``x_ss``, before the valve moves again (``J`` suffices when the input carries on in the
  direction the valve was already moving);
* ``J`` — slip jump: when the valve breaks free it jumps by ``J`` and then follows the input
  with an offset, ``x = u - f_d (S - J) / 2`` where ``f_d`` is the direction of travel.

``J = 0`` gives a pure deadband of width ``S``; ``J = S`` the "no offset" case; ``S = J = 0``
a linear valve (``x = u``).

References
----------
M. A. A. S. Choudhury, N. F. Thornhill, S. L. Shah, "Modelling valve stiction", Control
Engineering Practice 13 (2005) 641-658, section 4 and the flowchart of Fig. 7.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


class StictionValve:
    """Positions of N valves, advanced one sample at a time (vectorised over valves).

    Parameters
    ----------
    s : array_like, shape (N,) or scalar
        Deadband plus stickband ``S`` in % of span (``>= 0``).
    j : array_like, shape (N,) or scalar
        Slip jump ``J`` in % of span (``>= 0``).
    initial_position : array_like, shape (N,)
        Starting stem position (% of span); the valve starts at rest there.
    low, high : float
        Travel limits of the valve (% of span); the input is clipped to them first.

    Notes
    -----
    State per valve: the previous (clipped) input, the input ``x_ss`` at which it last stuck,
    whether it is stuck, and the sign of its last movement ``d`` (0 before it ever moved).
    One step with input ``u_k``:

    1. ``v = sign(u_k - u_{k-1})``. A moving valve whose input stops or reverses comes to rest:
       ``x_ss = u_{k-1}``.
    2. A resting valve breaks free when ``|u_k - x_ss| > S`` (``> J`` when ``u_k - x_ss`` has
       the sign of ``d``); it then moves in the direction ``f_d = sign(u_k - x_ss)``.
    3. A moving valve sits at ``x_k = u_k - f_d (S - J) / 2``; a resting valve keeps
       ``x_k = x_{k-1}``.
    """

    def __init__(
        self,
        s: npt.ArrayLike,
        j: npt.ArrayLike,
        initial_position: npt.ArrayLike,
        low: float = 0.0,
        high: float = 100.0,
    ) -> None:
        start = np.atleast_1d(np.asarray(initial_position, dtype=np.float64))
        n = start.shape[0]
        self.s: FloatArray = np.broadcast_to(np.asarray(s, dtype=np.float64), (n,)).copy()
        self.j: FloatArray = np.broadcast_to(np.asarray(j, dtype=np.float64), (n,)).copy()
        if np.any(self.s < 0) or np.any(self.j < 0):
            raise ValueError("s and j (stiction parameters, % of span) must be >= 0")
        if not low < high:
            raise ValueError("low must be below high (valve travel limits)")
        self.low = float(low)
        self.high = float(high)
        start = np.clip(start, self.low, self.high)
        self.position: FloatArray = start.copy()
        self._offset: FloatArray = (self.s - self.j) / 2.0
        self._u_prev: FloatArray = start.copy()
        self._x_ss: FloatArray = start.copy()
        self._stuck = np.ones(n, dtype=bool)
        self._direction: FloatArray = np.zeros(n, dtype=np.float64)

    def __len__(self) -> int:
        return int(self.position.shape[0])

    def step(self, u: npt.ArrayLike) -> FloatArray:
        """Apply controller outputs ``u`` (% of span) and return the new stem positions."""
        u_now = np.clip(np.asarray(u, dtype=np.float64), self.low, self.high)
        velocity_sign = np.sign(u_now - self._u_prev)
        comes_to_rest = ~self._stuck & (velocity_sign != self._direction)
        x_ss = np.where(comes_to_rest, self._u_prev, self._x_ss)
        stuck = self._stuck | comes_to_rest
        deviation = u_now - x_ss
        f_d = np.sign(deviation)
        threshold = np.where(f_d == self._direction, self.j, self.s)
        slips = stuck & (np.abs(deviation) > threshold)
        moving = ~stuck | slips
        direction = np.where(stuck, f_d, velocity_sign)
        moved = np.clip(u_now - direction * self._offset, self.low, self.high)
        self.position = np.where(moving, moved, self.position)
        self._stuck = stuck & ~slips
        self._direction = np.where(moving, direction, self._direction)
        self._x_ss = x_ss
        self._u_prev = u_now
        return self.position


def stiction_valve_response(
    u: npt.ArrayLike, s: float, j: float, low: float = 0.0, high: float = 100.0
) -> FloatArray:
    """Stem positions of one valve driven by the input sequence ``u`` (% of span).

    Parameters
    ----------
    u : array_like, shape (n,)
        Controller output, % of span. The valve starts at rest at ``u[0]``.
    s, j : float
        Deadband plus stickband ``S`` and slip jump ``J`` (% of span), Choudhury et al. 2005.
    low, high : float
        Travel limits (% of span).

    Returns
    -------
    ndarray, shape (n,)
        Valve positions ``x`` (% of span).
    """
    inputs = np.asarray(u, dtype=np.float64)
    if inputs.ndim != 1 or inputs.shape[0] == 0:
        raise ValueError("u must be a non-empty 1-D array of controller outputs")
    valve = StictionValve(s, j, inputs[:1], low, high)
    positions = np.empty_like(inputs)
    positions[0] = valve.position[0]
    for k in range(1, inputs.shape[0]):
        positions[k] = valve.step(inputs[k : k + 1])[0]
    return positions
