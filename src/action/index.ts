import { main } from './main'
import { post } from './post'
import { isPost, markMainStarted } from './state'

// One bundle serves both steps; the state the main step saves tells them apart.
if (isPost) {
  void post()
} else {
  markMainStarted()
  void main()
}
