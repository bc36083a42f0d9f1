"""Segmentation from affinity graphs: affinities, MALIS training losses, agglomeration.

* :mod:`~neuroinverse.segmentation.affinities`: the nearest-neighbour affinity graph, ground
  truth affinities, connected components of a thresholded graph, crop relabelling.
* :mod:`~neuroinverse.segmentation.malis`: maximin edges, MALIS pair counts and losses
  (Turaga et al., NIPS 2009; constrained form of Funke et al., TPAMI 2019).
* :mod:`~neuroinverse.segmentation.agglomerate`: watershed fragments and quantile
  agglomeration (Funke et al., TPAMI 2019).
"""
